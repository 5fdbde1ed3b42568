package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// statusDoc is `tandem status --json` (and what a status page serves): the
// registry, every move, and everything that blocks the next step.
type statusDoc struct {
	Database string `json:"database"`
	// Floor is null when no instance is registered: there is no floor.
	Floor *floorJSON `json:"floor"`
	// Finalized is the release below which instances may not register;
	// null while no move was finalized.
	Finalized *int64         `json:"finalized"`
	Caps      []capJSON      `json:"caps"`
	Counts    map[string]int `json:"counts"` // instances per state
	// Attention lists the missing and error instances: they still count
	// for the floor and caps.
	Attention []instanceJSON `json:"attention"`
	Moves     []moveJSON     `json:"moves"`
	// Freeze is the write freeze in force (seq 0: none was ever
	// recorded) and who has not acknowledged it.
	Freeze freezeJSON `json:"freeze"`
	// Blockers is everything that makes the next step unsafe, each with
	// the command to run; Safe is true only when it is empty.
	Blockers []blockerJSON `json:"blockers"`
	Safe     bool          `json:"safe"`
	// Exit is what `tandem status` exits with: 0 safe, 3 blocked (wait),
	// 5 needs attention.
	Exit int `json:"exit"`

	status dualwrite.Status // for the text
}

// buildStatus reads the registry and the moves and says what is safe to
// do next. It only reads, and needs no command line: db and reg are open.
func (a *app) buildStatus(ctx context.Context, db *dialect.DB, reg *services.Registry) (statusDoc, error) {
	snap, err := reg.Snapshot(ctx)
	if err != nil {
		return statusDoc{}, err
	}
	rep := statusDoc{Database: db.DSN().Redacted(), Floor: floorOf(snap.Floor()), Caps: capsView(snap.Caps()),
		Counts: map[string]int{}, Attention: []instanceJSON{}, Moves: []moveJSON{}, Blockers: []blockerJSON{}}
	if snap.Finalized > 0 {
		f := snap.Finalized
		rep.Finalized = &f
	}
	for _, in := range snap.Instances {
		rep.Counts[string(in.State)]++
		if in.State == services.StateMissing || in.State == services.StateError {
			rep.Attention = append(rep.Attention, instanceView(in))
		}
	}
	rep.Blockers = append(rep.Blockers, blockersView("", "", move.Legacy, dualwrite.InstanceBlockers(snap))...)
	// The read-new gate also looks at deleted instances.
	mg, err := a.readManager(ctx, db, historySource{snapshotSource{snap}, reg})
	if err != nil {
		return rep, fmt.Errorf("status: moves: %w", err)
	}
	if len(mg.Moves()) > 0 {
		st, err := mg.Status(ctx)
		if err != nil {
			return rep, fmt.Errorf("status: moves: %w", err)
		}
		rep.status = st
		for _, m := range st.Moves {
			mv := moveView(m)
			rep.Moves = append(rep.Moves, mv)
			rep.Blockers = append(rep.Blockers, mv.Blockers...)
		}
	}
	fz, err := dualwrite.ReadFreeze(ctx, db)
	if err != nil {
		return rep, fmt.Errorf("status: freeze: %w", err)
	}
	fs := dualwrite.FreezeAcks(fz, snap)
	rep.Freeze = freezeView(fs, a.missingAfter)
	rep.Blockers = append(rep.Blockers, freezeBlockers(fs, a.missingAfter)...)
	rep.Safe = len(rep.Blockers) == 0
	rep.Exit, _ = exitCode(rep.verdict())
	return rep, nil
}

// verdict is the status's exit: nil when safe. A blocker that can never
// clear (exit 2) in status still needs someone to act: 5.
func (r statusDoc) verdict() error {
	err := verdict(r.Blockers, r.reason())
	if oc, ok := err.(*outcomeError); ok && oc.exit == exitBadInput {
		return attention(r.reason())
	}
	return err
}

func (r statusDoc) reason() string {
	msgs := make([]string, len(r.Blockers))
	for i, b := range r.Blockers {
		msgs[i] = b.Message
	}
	return fmt.Sprintf("%d blocker(s): %s", len(msgs), strings.Join(msgs, "; "))
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "What is safe to do next: the floor, the caps, who holds them, and what blocks",
		Long: `Show the registry (floor, caps, and exactly which instances hold them and
since when), instances that need attention (missing or error ones still
count for the floor), and every move with what blocks its next phase.

It says "Nothing blocks" and exits 0 only when no move is blocked or has a
step interrupted half way, every move's triggers are what its phase needs
(as generated, or dropped once contracted), no instance is missing or in
error, and every instance that is not deleted has acknowledged the write
freeze or thaw in force (a freeze acknowledged everywhere is shown, not a
blocker). Otherwise it names each blocker, one a line, with the command to
run, and exits 3 when waiting clears every blocker (instances still
rolling, a backfill running, a freeze not acknowledged yet by instances
that are up) or 5 when someone must act (an instance missing or in error,
triggers that differ, a backfill to run or resume, a verify to run).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			reg, db, done, err := a.registry(ctx)
			if err != nil {
				return err
			}
			defer done()
			rep, err := a.buildStatus(ctx, db, reg)
			if err != nil {
				return err
			}
			return a.emit(rep, rep.print, rep.verdict())
		},
	}
}

func (r statusDoc) print(w io.Writer) {
	fmt.Fprintf(w, "Database: %s\n", r.Database)
	states := make([]string, 0, len(r.Counts))
	for st, n := range r.Counts {
		states = append(states, fmt.Sprintf("%d %s", n, st))
	}
	sort.Strings(states)
	if len(states) == 0 {
		fmt.Fprintln(w, "Instances: none registered")
	} else {
		fmt.Fprintf(w, "Instances: %s\n", strings.Join(states, ", "))
	}
	printFloor(w, r.Floor, r.Caps, r.Finalized)
	if len(r.Attention) > 0 {
		fmt.Fprintln(w, "Needs attention (these still count for the floor and caps):")
		printInstancesJSON(w, r.Attention, "  ")
	}
	if len(r.status.Moves) > 0 {
		r.status.WriteText(w)
	}
	if r.Freeze.Seq > 0 {
		r.Freeze.text(w, "")
	}
	if len(r.Blockers) > 0 {
		fmt.Fprintln(w, "Blocked:")
		printBlockers(w, r.Blockers, "  ")
	}
	if r.Safe {
		fmt.Fprintln(w, "Nothing blocks: it is safe to roll the next instance.")
	}
}

// printBlockers writes one blocker a line, then the command to run under
// it.
func printBlockers(w io.Writer, bs []blockerJSON, indent string) {
	for _, b := range bs {
		where := ""
		if b.Move != nil {
			where = "move " + *b.Move + ": "
		}
		fmt.Fprintf(w, "%s- %s[%s] %s\n", indent, where, b.Kind, b.Message)
		if b.NextCommand != nil {
			fmt.Fprintf(w, "%s    next: %s\n", indent, *b.NextCommand)
		}
	}
}
