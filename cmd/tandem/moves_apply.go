package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
)

// applied is what `moves apply` did to one move.
type applied struct {
	Move    string `json:"move"`
	Action  string `json:"action"` // "recorded", "unchanged", "amended" or "earlier"
	Version int64  `json:"version"`
	// Declared is, for "earlier", the earlier recorded version the plan
	// equals: the ledger's Version governs.
	Declared int64  `json:"declared_version,omitempty"`
	Digest   string `json:"digest"`
	Change   string `json:"change,omitempty"`
	DryRun   bool   `json:"dry_run,omitempty"`
}

func (mc *movesCmd) apply() *cobra.Command {
	var amend []string
	var note string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "apply [--amend NAME --note WHY] [--dry-run]",
		Short: "Record the plan's moves in the ledger; every later command reads them from there",
		Long: `Record the definition of every move of the plan (--plan, env TANDEM_PLAN,
default ./tandem-plan.yaml) that the ledger does not know yet, and check the
others against what it records. A move that differs is refused (exit 2) with
each differing field; --amend NAME records the plan's definition of NAME as an
amendment, in the definition's and the phase history, when the change is safe
at the move's phase (a release of a phase not entered yet, the description;
tables, columns, triggers and transforms only before data was written with
them). Running it again changes nothing.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if err := mc.checkRelease(); err != nil {
				return err
			}
			moves, err := mc.a.declared()
			if err != nil {
				return err
			}
			if len(moves) == 0 {
				return &usageError{fmt.Errorf("moves apply: no plan: %s does not exist; name one with --plan or TANDEM_PLAN", mc.a.plan)}
			}
			names := make([]string, len(moves))
			for i, m := range moves {
				names[i] = m.Name
			}
			opts := []dualwrite.Option{dualwrite.WithRelease(mc.release), dualwrite.WithLogger(mc.a.logger()), mc.a.planSource()}
			for _, n := range amend {
				if !slices.Contains(names, n) {
					return &usageError{fmt.Errorf("moves apply --amend %s: %w", n, &dualwrite.UnknownMoveError{Name: n, Known: names})}
				}
				opts = append(opts, dualwrite.WithAmend(n, note))
			}
			db, err := mc.a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			before, err := latestVersions(ctx, db)
			if err != nil {
				return err
			}
			if dryRun {
				out, err := mc.applyPlan(ctx, db, moves, before, amend)
				if err != nil {
					return err
				}
				return mc.a.emit(applyView(out, true), func(w io.Writer) { printApplied(w, out) }, nil)
			}
			if _, err := dualwrite.New(ctx, db, moves, opts...); err != nil {
				return movesError(err)
			}
			defs, err := dualwrite.RecordedDefinitions(ctx, db)
			if err != nil {
				return err
			}
			var out []applied
			for _, d := range defs {
				if !slices.Contains(names, d.Move) {
					continue
				}
				a := applied{Move: d.Move, Version: d.Version, Digest: d.Digest, Action: "unchanged"}
				switch prev, ok := before[d.Move]; {
				case !ok:
					a.Action = "recorded"
				case prev < d.Version:
					a.Action, a.Change = "amended", d.Change
				default:
					if err := earlier(ctx, db, &a, moves[slices.Index(names, d.Move)]); err != nil {
						return err
					}
				}
				out = append(out, a)
			}
			return mc.a.emit(applyView(out, false), func(w io.Writer) { printApplied(w, out) }, nil)
		},
	}
	cmd.Flags().StringArrayVar(&amend, "amend", nil, "record the plan's definition of this move as an amendment (repeatable)")
	cmd.Flags().StringVar(&note, "note", "", "why the amendment, recorded in the history")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be recorded or amended, change nothing")
	return cmd
}

func printApplied(w io.Writer, out []applied) {
	for _, a := range out {
		recorded, amended := "Recorded", "Amended"
		if a.DryRun {
			recorded, amended = "Would record", "Would amend"
		}
		switch a.Action {
		case "recorded":
			fmt.Fprintf(w, "%s move %s (definition version %d, digest %.12s)\n", recorded, a.Move, a.Version, a.Digest)
		case "amended":
			fmt.Fprintf(w, "%s move %s: definition version %d, digest %.12s: %s\n", amended, a.Move, a.Version, a.Digest, a.Change)
		case "earlier":
			fmt.Fprintf(w, "Move %s: the plan declares definition version %d, an earlier one; the ledger's version %d (digest %.12s) governs (`tandem moves show %s` prints it; --amend %s records the plan's as a new version)\n", a.Move, a.Declared, a.Version, a.Digest, a.Move, a.Move)
		default:
			fmt.Fprintf(w, "Move %s is as recorded (definition version %d, digest %.12s)\n", a.Move, a.Version, a.Digest)
		}
	}
}

// applyPlan says what apply would do, reading only: each move is checked
// on its own against the ledger, and a drift is reported as the amendment
// it would be when --amend names the move and every change is safe.
func (mc *movesCmd) applyPlan(ctx context.Context, db *dialect.DB, moves []move.Move, before map[string]int64, amend []string) ([]applied, error) {
	var out []applied
	for _, m := range moves {
		a := applied{Move: m.Name, Version: before[m.Name], Digest: dualwrite.Digest(m), Action: "unchanged", DryRun: true}
		_, err := dualwrite.Load(ctx, db, []move.Move{m}, mc.a.planSource())
		var de *dualwrite.DriftError
		switch {
		case errors.As(err, &de) && slices.Contains(amend, m.Name) && !de.Refused():
			parts := make([]string, len(de.Fields))
			for i, f := range de.Fields {
				parts[i] = f.String()
			}
			a.Action, a.Version, a.Change = "amended", a.Version+1, strings.Join(parts, "; ")
		case err != nil:
			if de != nil {
				de.Amending = slices.Contains(amend, m.Name)
			}
			return nil, movesError(err)
		case a.Version == 0:
			a.Action, a.Version = "recorded", 1
		default:
			if err := earlier(ctx, db, &a, m); err != nil {
				return nil, err
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// earlier marks a as "earlier" when the plan's m is not the ledger's
// current definition but equals an earlier recorded version: accepted,
// and the current one governs.
func earlier(ctx context.Context, db *dialect.DB, a *applied, m move.Move) error {
	h, err := dualwrite.DefinitionHistory(ctx, db, db.Engine(), m.Name)
	if err != nil || len(h) == 0 {
		return err
	}
	cur, digest := h[len(h)-1], dualwrite.Digest(m)
	if digest == cur.Digest {
		return nil
	}
	for i := len(h) - 2; i >= 0; i-- {
		if h[i].Digest == digest {
			a.Action, a.Declared, a.Version, a.Digest = "earlier", h[i].Version, cur.Version, cur.Digest
			return nil
		}
	}
	return nil
}

func latestVersions(ctx context.Context, db *dialect.DB) (map[string]int64, error) {
	defs, err := dualwrite.RecordedDefinitions(ctx, db)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, d := range defs {
		out[d.Move] = d.Version
	}
	return out, nil
}

func (mc *movesCmd) show() *cobra.Command {
	return &cobra.Command{
		Use:   "show [NAME]",
		Short: "Print the moves as the ledger records them, as a plan file (--json: with versions and history)",
		Long: `Print the recorded definition of every move (or of NAME) in the plan format,
each with its definition version and digest: the truth every command works
from. A transform that exists only in the application's Go code is shown as a
comment: a plan cannot carry it. Reads only.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			db, err := mc.a.openDB(ctx)
			if err != nil {
				return err
			}
			defer db.Close()
			defs, err := dualwrite.RecordedDefinitions(ctx, db)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var known []string
				var one []dualwrite.Definition
				for _, d := range defs {
					known = append(known, d.Move)
					if d.Move == args[0] {
						one = append(one, d)
					}
				}
				if one == nil {
					return &usageError{&dualwrite.UnknownMoveError{Name: args[0], Known: known}}
				}
				defs = one
			}
			if defs == nil {
				defs = []dualwrite.Definition{}
			}
			if mc.a.json {
				out := showDoc{Moves: []shownJSON{}}
				for _, d := range defs {
					h, err := dualwrite.DefinitionHistory(ctx, db, db.Engine(), d.Move)
					if err != nil {
						return err
					}
					s := shownJSON{definitionJSON: definitionView(d), History: []definitionJSON{}}
					for _, v := range h {
						s.History = append(s.History, definitionView(v))
					}
					out.Moves = append(out.Moves, s)
				}
				return mc.a.printJSON(out)
			}
			if len(defs) == 0 {
				fmt.Fprintln(mc.a.stdout, "# The ledger records no move yet (tandem moves apply --plan FILE records a plan's moves).")
				return nil
			}
			fmt.Fprintf(mc.a.stdout, "version: %d\nmoves:\n", dualwrite.PlanVersion)
			for _, d := range defs {
				m, err := dualwrite.MoveFromDefinition([]byte(d.Canonical))
				if err != nil {
					return err
				}
				if err := writePlanMove(mc.a.stdout, d, m); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// writePlanMove writes one recorded move as an item of a plan's moves list.
func writePlanMove(w io.Writer, d dualwrite.Definition, m move.Move) error {
	fmt.Fprintf(w, "  # definition version %d, digest %s, recorded %s\n", d.Version, d.Digest, d.RecordedAt.Format("2006-01-02T15:04:05Z"))
	fwd, bwd := d.NeedsGo()
	for _, t := range []struct {
		dir    string
		goOnly bool
	}{{"forward", fwd}, {"backward", bwd}} {
		if t.goOnly {
			fmt.Fprintf(w, "  # the %s transform exists only in the application's Go code (a plan cannot carry it)\n", t.dir)
		}
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode([]move.Move{m}); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		fmt.Fprintf(w, "  %s\n", line)
	}
	return nil
}
