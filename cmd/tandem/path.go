package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/upgradepath"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.pathCommand() })
}

func (a *app) pathCommand() *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:   "path [--to RELEASE]",
		Short: "The ordered steps from the releases running now to a fleet at RELEASE, or the table of releases that may run together",
		Long: `With --to, print the ordered steps from the fleet as the registry and the
ledger have it now to every instance at RELEASE, with every move as far as
RELEASE carries it: which release to roll next (the newest, up to RELEASE,
that ships no phase more than one past where each move stands), the
advances, backfills, verifies, finalizes and contracts between, which steps
cannot be undone, which run under a write freeze (tandem freeze ... and
tandem thaw ... around them), and what blocks right now (status's
blockers). It exits like status: 0 when nothing blocks the first step, 3
when waiting clears it, 5 when someone must act; 2 for a release older than
one instances run or below the finalized floor.

Without --to, print each move's table of releases that may run together at
each of its phases: "yes" (may start), "running" (may keep running, may not
start) or "no", and the lowest release every instance must run before the
move leaves the phase. It exits 0.

It only reads.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("to") {
				return a.path(cmd.Context(), to)
			}
			return a.compatTable(cmd.Context())
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "the release the fleet is to run")
	return cmd
}

// path plans the way to release to.
func (a *app) path(ctx context.Context, to int64) error {
	reg, db, done, err := a.registry(ctx)
	if err != nil {
		return err
	}
	defer done()
	rep, err := a.buildStatus(ctx, db, reg)
	if err != nil {
		return err
	}
	snap, err := reg.Snapshot(ctx)
	if err != nil {
		return err
	}
	history, err := reg.List(ctx, true)
	if err != nil {
		return err
	}
	mg, err := a.readManager(ctx, db, nil)
	if err != nil {
		return err
	}
	in := upgradepath.FromStatus(to, rep.status, mg.Moves(), snap, history)
	if in.Freeze, err = dualwrite.ReadFreeze(ctx, db); err != nil {
		return err
	}
	p, err := upgradepath.Plan(in)
	switch {
	case errors.Is(err, upgradepath.ErrTarget), errors.Is(err, upgradepath.ErrNoPath):
		return refused(err.Error())
	case err != nil:
		return err
	}
	doc := pathView(p, rep)
	var then error
	if !doc.Safe {
		then = verdict(doc.Blockers, doc.reason())
		if oc, ok := then.(*outcomeError); ok && oc.exit == exitBadInput {
			// As in status: a blocker that can never clear needs someone to act.
			then = attention(doc.reason())
		}
	}
	return a.emit(doc, doc.print, then)
}

func (d pathDoc) reason() string {
	msgs := make([]string, len(d.Blockers))
	for i, b := range d.Blockers {
		msgs[i] = b.Message
	}
	return fmt.Sprintf("the first step is blocked: %d blocker(s): %s", len(msgs), strings.Join(msgs, "; "))
}

func (d pathDoc) print(w io.Writer) {
	if len(d.Running) > 0 {
		fmt.Fprintf(w, "Path from release %s to release %d:\n", joinInt64(d.Running), d.Target)
	} else {
		fmt.Fprintf(w, "Path to release %d (no instance registered: only the moves):\n", d.Target)
	}
	if !d.TargetKnown {
		fmt.Fprintf(w, "  (no move names release %d and no instance of it registered: it is taken to carry every phase the moves name up to it; moves it brings that the ledger does not know yet are not in this path)\n", d.Target)
	}
	if len(d.Steps) == 0 {
		fmt.Fprintf(w, "  nothing to do: every instance runs release %d or newer and every move is as far as it carries it\n", d.Target)
	}
	for _, s := range d.Steps {
		var tags []string
		if s.Irreversible {
			tags = append(tags, "irreversible")
		}
		if s.Offline {
			tags = append(tags, "offline")
		}
		if s.Frozen {
			tags = append(tags, "frozen")
		}
		tag := ""
		if len(tags) > 0 {
			tag = " [" + strings.Join(tags, ", ") + "]"
		}
		fmt.Fprintf(w, "  %2d. %s%s\n", s.N, s.title(), tag)
		fmt.Fprintf(w, "      %s\n", s.Command)
		fmt.Fprintf(w, "      %s\n", s.Why)
	}
	if len(d.Blockers) > 0 {
		fmt.Fprintln(w, "Blocked now:")
		printBlockers(w, d.Blockers, "  ")
	} else {
		fmt.Fprintln(w, "Nothing blocks the first step.")
	}
}

func (s pathStepJSON) title() string {
	mv := ""
	if s.Move != nil {
		mv = *s.Move
	}
	switch upgradepath.StepKind(s.Kind) {
	case upgradepath.StepRoll:
		return fmt.Sprintf("roll release %d to %s", *s.Release, strings.Join(s.Instances, ", "))
	case upgradepath.StepAdvance:
		return fmt.Sprintf("advance %s: %s -> %s", mv, *s.From, *s.To)
	case upgradepath.StepContract:
		return fmt.Sprintf("contract %s: %s -> %s", mv, *s.From, *s.To)
	case upgradepath.StepFreeze:
		if mv == "" {
			return "freeze writes to every move"
		}
		return "freeze writes to " + mv
	case upgradepath.StepThaw:
		if mv == "" {
			return "thaw every move"
		}
		return "thaw " + mv
	}
	return s.Kind + " " + mv
}

// compatTable prints the table of releases that may run together.
func (a *app) compatTable(ctx context.Context) error {
	db, err := a.openDB(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	mg, err := a.readManager(ctx, db, nil)
	if err != nil {
		return err
	}
	phases := map[string]move.Phase{}
	for _, m := range mg.Moves() {
		p, err := mg.Phase(ctx, m.Name)
		if err != nil {
			return movesError(err)
		}
		phases[m.Name] = p
	}
	doc := compatView(upgradepath.Compatibility(mg.Moves(), phases), db.DSN().Redacted())
	return a.emit(doc, doc.print, nil)
}

func (d compatDoc) print(w io.Writer) {
	if len(d.Moves) == 0 {
		fmt.Fprintln(w, "Moves: none declared")
		return
	}
	fmt.Fprintln(w, `Releases that may run together, per phase of each move ("yes": may start; "running": may keep running, may not start; "no": may not run):`)
	for _, m := range d.Moves {
		trig := "without triggers"
		if m.Triggers {
			trig = "with triggers"
		}
		fmt.Fprintf(w, "\n%s (%s), at %s:\n", m.Move, trig, m.Phase)
		tw := table(w)
		fmt.Fprint(tw, "    PHASE")
		for _, c := range d.Columns {
			fmt.Fprintf(tw, "\t%s", c.Label)
		}
		fmt.Fprint(tw, "\tNEXT PHASE NEEDS\n")
		for _, r := range m.Rows {
			mark := "  "
			if r.Current {
				mark = "> "
			}
			fmt.Fprintf(tw, "  %s%s", mark, r.Phase)
			for _, c := range r.Cells {
				fmt.Fprintf(tw, "\t%s", c)
			}
			needs := "-"
			switch {
			case r.AdvanceNeeds == nil:
			case *r.AdvanceNeeds == 0:
				needs = "any release"
			default:
				needs = fmt.Sprintf("every instance at >= %d", *r.AdvanceNeeds)
			}
			fmt.Fprintf(tw, "\t%s\n", needs)
		}
		tw.Flush()
	}
}

func joinInt64(rs []int64) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprint(r)
	}
	return strings.Join(s, ", ")
}
