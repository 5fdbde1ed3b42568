package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// defaultPlan is where the moves are read from when neither --plan nor
// TANDEM_PLAN says otherwise. It is optional: a move the ledger records
// needs no plan.
const defaultPlan = "tandem-plan.yaml"

// addPlanFlag makes --plan a flag of every command.
func (a *app) addPlanFlag(root *cobra.Command) {
	root.PersistentFlags().StringVar(&a.plan, "plan", envOr("TANDEM_PLAN", defaultPlan),
		"plan file declaring moves the ledger may not know yet (env TANDEM_PLAN; optional: recorded moves are read from the ledger)")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		a.command = strings.TrimPrefix(strings.TrimPrefix(cmd.CommandPath(), root.Name()), " ")
		a.planExplicit = cmd.Flags().Changed("plan") || os.Getenv("TANDEM_PLAN") != ""
		if !a.planExplicit {
			return nil
		}
		if _, err := os.Stat(a.plan); err != nil {
			from := "--plan " + a.plan
			if !cmd.Flags().Changed("plan") {
				from = "TANDEM_PLAN=" + a.plan
			}
			return &usageError{fmt.Errorf("%s: %w (the plan is optional: leave out --plan and TANDEM_PLAN to read the moves from the ledger)", from, err)}
		}
		return nil
	}
}

// declared returns the plan's moves: none when no plan is named and the
// default file is absent. A plan that exists but does not parse is bad
// input.
func (a *app) declared() ([]move.Move, error) {
	if !a.planExplicit {
		if _, err := os.Stat(a.plan); errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
	}
	p, err := dualwrite.LoadPlan(a.plan)
	if err != nil {
		return nil, &usageError{err}
	}
	return p.Moves, nil
}

// planSource says, in a drift error, where the declaration came from and
// how to record an intended change.
func (a *app) planSource() dualwrite.Option {
	return dualwrite.WithDeclaredIn("plan "+a.plan, func(name string) string {
		return fmt.Sprintf("tandem moves apply --plan %s --amend %s --note WHY", a.plan, name)
	})
}

// readManager builds a Manager that only reads: every move the ledger
// records, plus the plan's moves it does not know yet (at legacy).
func (a *app) readManager(ctx context.Context, db *dialect.DB, src services.Source, extra ...dualwrite.Option) (*dualwrite.Manager, error) {
	moves, err := a.declared()
	if err != nil {
		return nil, err
	}
	opts := []dualwrite.Option{a.planSource(), dualwrite.WithLogger(a.logger())}
	if src != nil {
		opts = append(opts, dualwrite.WithRegistry(src))
	}
	mg, err := dualwrite.Load(ctx, db, moves, append(opts, extra...)...)
	return mg, movesError(err)
}

// lookupMove finds one move for commands that may run without a database
// (`moves sql`, `triggers sql`): from the ledger when the database can be
// opened, else from the plan.
func (a *app) lookupMove(ctx context.Context, name string) (move.Move, error) {
	db, err := a.openDB(ctx)
	if err == nil {
		defer db.Close()
		mg, err := a.readManager(ctx, db, nil)
		if err != nil {
			return move.Move{}, err
		}
		m, err := mg.Move(name)
		return m, movesError(err)
	}
	if !errors.Is(err, dialect.ErrNoSuchFile) && !errors.Is(err, dialect.ErrUnreachable) {
		return move.Move{}, err
	}
	dbErr := err
	moves, err := a.declared()
	if err != nil {
		return move.Move{}, err
	}
	var known []string
	for _, m := range moves {
		if m.Name == name {
			a.logger().Info("move read from the plan: the database cannot be read", "move", name, "err", dbErr)
			return m, nil
		}
		known = append(known, m.Name)
	}
	return move.Move{}, &usageError{fmt.Errorf("%w (and the ledger cannot be read: %v)", &dualwrite.UnknownMoveError{Name: name, Known: known}, dbErr)}
}
