package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// completionTimeout bounds what a completion may spend reading the
// database: a shell waits on it at every TAB.
const completionTimeout = 3 * time.Second

// addCompletion adds `tandem completion bash|zsh|fish|powershell` and the
// dynamic completions: move names (read from the ledger, plus the plan's
// moves it does not know yet), phases, engines and instance ids (read from
// the registry). Completions only read: they open the database as every
// read does (a SQLite file must exist) and never take a lock or write.
func (a *app) addCompletion(root *cobra.Command) {
	// The scripts go to the writer set when the command is made: set it
	// first (cobra would add the command only at Execute, after run sets
	// it, but then refuseUnknownSubcommands could not see it).
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.InitDefaultCompletionCmd()
	moveArg := map[string]bool{
		"moves advance": true, "moves finalize": true, "moves backfill": true, "moves verify": true, "moves sql": true,
		"moves show": true, "triggers sql": true, "triggers install": true, "triggers drop": true, "triggers check": true,
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		path := strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), root.Name()), " ")
		switch {
		case c.ValidArgsFunction != nil:
		case moveArg[path]:
			c.ValidArgsFunction = a.completeFirst(a.moveNames)
		case path == "services delete":
			c.ValidArgsFunction = a.completeFirst(a.instanceIDs)
		}
		for name, fn := range map[string]cobra.CompletionFunc{
			"to": completePhases, "phase": completePhases, "move": a.completeMoveFlag,
			"dialect": cobra.FixedCompletions([]string{string(dialect.SQLite), string(dialect.Postgres), string(dialect.MySQL)}, cobra.ShellCompDirectiveNoFileComp),
		} {
			if c.LocalNonPersistentFlags().Lookup(name) != nil {
				_ = c.RegisterFlagCompletionFunc(name, fn)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeFirst completes the first argument with what list returns
// (starting with what was typed), and nothing after it.
func (a *app) completeFirst(list func(ctx context.Context) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
		defer cancel()
		return matching(list(ctx), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) completeMoveFlag(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	return matching(a.moveNames(ctx), toComplete), cobra.ShellCompDirectiveNoFileComp
}

func completePhases(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var names []string
	for _, p := range move.Phases() {
		names = append(names, p.String())
	}
	return matching(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func matching(names []string, prefix string) []cobra.Completion {
	out := []cobra.Completion{}
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// moveNames lists the moves the ledger records and the plan declares;
// what cannot be read is left out (a completion has nowhere to say why:
// `cobra.CompDebugln` shows it with BASH_COMP_DEBUG_FILE set).
func (a *app) moveNames(ctx context.Context) []string {
	var names []string
	if db, err := a.openDB(ctx); err == nil {
		defer db.Close()
		if mg, err := a.readManager(ctx, db, nil); err == nil {
			for _, m := range mg.Moves() {
				names = append(names, m.Name)
			}
		} else {
			cobra.CompDebugln("tandem: moves: "+err.Error(), false)
		}
	} else if moves, err := a.declared(); err == nil {
		for _, m := range moves {
			names = append(names, m.Name)
		}
	}
	return names
}

// instanceIDs lists the registry's instances that are not deleted.
func (a *app) instanceIDs(ctx context.Context) []string {
	db, err := a.openDB(ctx)
	if err != nil {
		cobra.CompDebugln("tandem: instances: "+err.Error(), false)
		return nil
	}
	defer db.Close()
	reg, err := services.New(ctx, db)
	if err != nil {
		return nil
	}
	ins, err := reg.List(ctx, false)
	if err != nil {
		return nil
	}
	ids := make([]string, 0, len(ins))
	for _, in := range ins {
		ids = append(ids, in.ID)
	}
	return ids
}
