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
	"github.com/tandem-go/tandem/services"
)

// statusSection adds one part (the moves, the triggers, ...) to `tandem status`.
type statusSection struct {
	Key string
	// Build reads what the section needs. It returns the JSON value, a text
	// renderer, and what blocks the next step (empty when nothing does).
	Build func(ctx context.Context, a *app, db *dialect.DB, snap services.Snapshot) (value any, text func(io.Writer), blocked []string, err error)
}

var statusSections []statusSection

type statusReport struct {
	Database  string                 `json:"database"`
	Floor     services.Floor         `json:"floor"`
	Finalized int64                  `json:"finalized"`
	Caps      []services.Cap         `json:"caps"`
	Counts    map[services.State]int `json:"counts"`
	Attention []services.Instance    `json:"attention"` // missing and error instances pin the floor
	Sections  map[string]any         `json:"sections,omitempty"`
	// Blocked names everything that makes the next step unsafe, each with
	// the command to run; Safe is true only when it is empty.
	Blocked   []string `json:"blocked"`
	NextSteps []string `json:"next_steps"`
	Safe      bool     `json:"safe"`
}

func (a *app) statusCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "What is safe to do next: the floor, the caps, who holds them, and what blocks",
		Long: `Show the registry (floor, caps, and exactly which instances hold them and
since when), instances that need attention (missing or error ones still
count for the floor), and every section that can block the next step.

It says "Nothing blocks" and exits 0 only when no move is blocked or has a
step interrupted half way, every move's triggers are what its phase needs
(as generated, or dropped once contracted), and no instance is missing or in
error. Otherwise it names each blocker with the command to run and exits 3,
so CI can wait on it.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			reg, db, done, err := a.registry(ctx)
			if err != nil {
				return err
			}
			defer done()
			snap, err := reg.Snapshot(ctx)
			if err != nil {
				return err
			}
			rep := statusReport{Database: db.DSN.Redacted(), Floor: snap.Floor(), Finalized: snap.Finalized,
				Caps: sortedCaps(snap.Caps()), Counts: map[services.State]int{}, Sections: map[string]any{},
				Blocked: []string{}, NextSteps: []string{}}
			for _, in := range snap.Instances {
				rep.Counts[in.State]++
				if in.State == services.StateMissing || in.State == services.StateError {
					rep.Attention = append(rep.Attention, in)
				}
			}
			for _, b := range dualwrite.InstanceBlockers(snap) {
				in := b.Instances[0]
				rep.Blocked = append(rep.Blocked, b.Message)
				rep.NextSteps = append(rep.NextSteps, fmt.Sprintf("instance %s is %s: bring it back, or delete it if it will not return: tandem services delete %s", in.ID, in.State, in.ID))
			}
			var texts []func(io.Writer)
			for _, s := range statusSections {
				v, text, blocked, err := s.Build(ctx, a, db, snap)
				if err != nil {
					return fmt.Errorf("status: %s: %w", s.Key, err)
				}
				rep.Sections[s.Key] = v
				rep.Blocked = append(rep.Blocked, blocked...)
				if text != nil {
					texts = append(texts, text)
				}
			}
			rep.Safe = len(rep.Blocked) == 0
			var blocked error
			if !rep.Safe {
				blocked = &blockedError{reason: strings.Join(rep.Blocked, "; ")}
			}
			return a.emit(rep, func(w io.Writer) { rep.print(w, texts) }, blocked)
		},
	}
}

func (r statusReport) print(w io.Writer, sections []func(io.Writer)) {
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
	(floorView{Floor: r.Floor, Caps: r.Caps, Finalized: r.Finalized}).print(w)
	if len(r.Attention) > 0 {
		fmt.Fprintln(w, "Needs attention (these still count for the floor and caps):")
		printInstances(w, r.Attention, "  ")
	}
	for _, s := range sections {
		s(w)
	}
	if len(r.Blocked) > 0 {
		fmt.Fprintln(w, "Blocked:")
		for _, b := range r.Blocked {
			fmt.Fprintf(w, "  - %s\n", b)
		}
	}
	if len(r.NextSteps) > 0 {
		fmt.Fprintln(w, "Next steps:")
		for _, s := range r.NextSteps {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
	if r.Safe {
		fmt.Fprintln(w, "Nothing blocks: it is safe to roll the next instance.")
	}
}
