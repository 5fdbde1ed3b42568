package dualwrite

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// Status is every move's state, for `tandem status` and `tandem moves list`.
type Status struct {
	TakenAt time.Time    `json:"taken_at"`
	Floor   int64        `json:"floor"`
	Moves   []MoveStatus `json:"moves"`
}

// Blocked lists what makes a move unsafe now (an interrupted step,
// triggers not as its phase needs them), one line each, and, one line per
// move, what blocks its next phase; empty when nothing does. A contracted
// move with its triggers gone never blocks.
func (s Status) Blocked() []string {
	var out []string
	for _, m := range s.Moves {
		for _, b := range m.Problems {
			out = append(out, fmt.Sprintf("move %s at %s: %s", m.Name, m.Phase, b.Message))
		}
		if m.Next != nil && !m.Next.Open {
			var why []string
			for _, b := range m.Next.Blockers {
				why = append(why, b.Message)
			}
			out = append(out, fmt.Sprintf("move %s %s -> %s: %s", m.Name, m.Phase, m.Next.To, strings.Join(why, "; ")))
		}
	}
	return out
}

// MoveStatus is one move's state.
type MoveStatus struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	From        string `json:"from"` // table.column
	To          string `json:"to"`
	Triggers    bool   `json:"triggers"`
	// SyncTriggers says, for a move with triggers (or a move with trigger
	// objects it should not have), whether the database holds what its
	// phase needs: present and as generated from write-both to write-new,
	// dropped once contracted.
	SyncTriggers string `json:"sync_triggers,omitempty"`
	// Problems is what is wrong now besides the next gate: steps
	// interrupted half way, triggers not as the phase needs them. Each
	// names the command that fixes it.
	Problems   []Blocker  `json:"problems,omitempty"`
	Phase      move.Phase `json:"phase"`
	PhaseSince time.Time  `json:"phase_since,omitzero"`
	// Definition is the recorded definition's version and digest; nil
	// while the ledger does not record the move.
	Definition *DefinitionRef `json:"definition,omitempty"`
	// Next is the gate of the next phase; nil once contracted.
	Next *Gate `json:"next,omitempty"`
	// Releases says what each release does now.
	Releases  []ReleaseRow   `json:"releases"`
	Instances []InstanceRef  `json:"instances"`
	Backfill  BackfillState  `json:"backfill"`
	Reverse   *BackfillState `json:"reverse_backfill,omitempty"`
	// Runner is the backfill or verify running now (Alive), or the one
	// that died while running: a rerun takes over at once.
	Runner *Runner `json:"runner,omitempty"`
	// FailedRows counts rows whose transform failed; Mismatches is nil
	// until a verify ran.
	FailedRows       int64      `json:"failed_rows"`
	VerifiedAt       *time.Time `json:"verified_at,omitempty"`
	Mismatches       *int64     `json:"mismatches,omitempty"`
	OldStale         bool       `json:"old_stale"`
	Finalized        bool       `json:"finalized"`
	FinalizedRelease int64      `json:"finalized_release,omitempty"`
	RollbackOpen     bool       `json:"rollback_open"`
	Steps            []StepLog  `json:"steps"`
	Interrupted      []StepLog  `json:"interrupted,omitempty"`
	History          []History  `json:"history"`
	// Backups are the copies of the database taken before the move's
	// irreversible steps, oldest first.
	Backups []Backup `json:"backups"`
	// Path is the phases the move goes through and how many releases
	// each needs; Shortcut says what triggers change about it.
	Path     string `json:"path"`
	Shortcut string `json:"shortcut"`
}

// ReleaseRow is what instances of one release do for a move.
type ReleaseRow struct {
	Release   int64      `json:"release"`
	Ships     []string   `json:"ships,omitempty"` // phases this release is the first to carry
	CanAct    move.Phase `json:"can_act"`         // highest phase the build carries
	Acts      move.Phase `json:"acts"`            // what it acts on now: min(ledger, CanAct)
	Does      string     `json:"does"`
	Instances int        `json:"instances"`
}

// BackfillState is one backfill direction's progress.
type BackfillState struct {
	Started   bool       `json:"started"`
	Complete  bool       `json:"complete"`
	RowsDone  int64      `json:"rows_done"`
	RowsTotal int64      `json:"rows_total"`
	Percent   float64    `json:"percent"`
	Cursor    string     `json:"cursor,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	DoneAt    *time.Time `json:"done_at,omitempty"`
}

func backfillState(p progress) BackfillState {
	s := BackfillState{Started: p.StartedAt.Valid, Complete: p.DoneAt.Valid, RowsDone: p.RowsDone, RowsTotal: p.RowsTotal, Cursor: p.Cursor.String}
	if p.StartedAt.Valid {
		t := p.StartedAt.Time.UTC()
		s.StartedAt = &t
	}
	if p.DoneAt.Valid {
		t := p.DoneAt.Time.UTC()
		s.DoneAt = &t
		s.Percent = 100
	} else if p.RowsTotal > 0 {
		s.Percent = min(100, 100*float64(p.RowsDone)/float64(p.RowsTotal))
	}
	return s
}

// Status reads the ledger and the registry and reports every move. It only
// reads.
func (mg *Manager) Status(ctx context.Context) (Status, error) {
	snap, err := mg.snapshot(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("dualwrite: status: %w", err)
	}
	st := Status{TakenAt: mg.utc()}
	if snap != nil {
		st.Floor = snap.Floor().Release
	}
	for _, name := range mg.order {
		ms, err := mg.moveStatus(ctx, mg.moves[name], snap)
		if err != nil {
			return st, fmt.Errorf("dualwrite: status of %s: %w", name, err)
		}
		st.Moves = append(st.Moves, ms)
	}
	return st, nil
}

func (mg *Manager) moveStatus(ctx context.Context, m move.Move, snap *services.Snapshot) (MoveStatus, error) {
	row := ledgerRow{Name: m.Name, Phase: move.Legacy.String()}
	if mg.ready {
		var err error
		if row, _, err = readLedger(ctx, mg.db, m.Name); err != nil {
			return MoveStatus{}, err
		}
	}
	ms := MoveStatus{Name: m.Name, Description: m.Description, From: m.Table + "." + m.Old, To: m.NewTable() + "." + m.New.Column,
		Triggers: m.Triggers, Phase: row.phase, PhaseSince: row.PhaseAt.UTC(), Backfill: backfillState(row.Forward),
		FailedRows: row.FailedRows, OldStale: row.OldStale != 0, Finalized: row.FinalizedAt.Valid,
		FinalizedRelease: row.FinalizedRelease.Int64, Instances: []InstanceRef{}}
	ms.RollbackOpen = !ms.Finalized && row.phase > move.Legacy && row.phase < move.Contracted
	def, err := recordedRef(ctx, mg.db, m.Name)
	if err != nil {
		return ms, err
	}
	ms.Definition = def
	tc, err := triggerCheck(ctx, mg.db, sqldialect.Of(mg.db), m, row.phase)
	if err != nil {
		return ms, err
	}
	if m.Triggers || !tc.AsExpected {
		ms.SyncTriggers = tc.Summary
	}
	if tc.Blocker != nil {
		ms.Problems = append(ms.Problems, *tc.Blocker)
	}
	if row.Reverse.StartedAt.Valid || ms.OldStale {
		r := backfillState(row.Reverse)
		ms.Reverse = &r
	}
	if mg.ready {
		var err error
		if ms.Runner, err = mg.runnerOf(ctx, row); err != nil {
			return ms, err
		}
	}
	if row.VerifiedAt.Valid {
		t := row.VerifiedAt.Time.UTC()
		ms.VerifiedAt = &t
	}
	if row.Mismatches.Valid {
		n := row.Mismatches.Int64
		ms.Mismatches = &n
	}
	if next, ok := row.phase.Next(); ok {
		g, err := mg.computeGate(ctx, mg.input(m, row, snap, mg.db), next)
		if err != nil {
			return ms, err
		}
		ms.Next = &g
	}
	ms.Steps, ms.History, ms.Backups = []StepLog{}, []History{}, []Backup{}
	if mg.ready {
		var err error
		if ms.Steps, err = readSteps(ctx, mg.db, m.Name); err != nil {
			return ms, err
		}
		for _, s := range ms.Steps {
			if s.Interrupted() {
				ms.Interrupted = append(ms.Interrupted, s)
			}
		}
		ms.Problems = append(ms.Problems, interruptedBlockers(m, ms.Steps)...)
		if ms.History, err = readHistory(ctx, mg.db, m.Name); err != nil {
			return ms, err
		}
		if ms.Backups, err = readBackups(ctx, mg.db, sqldialect.Of(mg.db), m.Name); err != nil {
			return ms, err
		}
	}
	// What each release does: every release the move names, plus every
	// release an instance runs.
	counts := map[int64]int{}
	if snap != nil {
		for _, in := range snap.Instances {
			if in.State == services.StateDeleted {
				continue
			}
			counts[in.Release]++
			ms.Instances = append(ms.Instances, ref(in, m))
		}
	}
	rels := []int64{}
	for _, p := range move.Phases()[1:] {
		if r := m.Releases.For(p); r > 0 && !slices.Contains(rels, r) {
			rels = append(rels, r)
		}
	}
	for r := range counts {
		if !slices.Contains(rels, r) {
			rels = append(rels, r)
		}
	}
	slices.Sort(rels)
	for _, r := range rels {
		rr := ReleaseRow{Release: r, CanAct: m.Releases.Highest(r), Instances: counts[r]}
		for _, p := range move.Phases()[1:] {
			if m.Releases.For(p) == r {
				rr.Ships = append(rr.Ships, p.String())
			}
		}
		rr.Acts = Effective(row.phase, rr.CanAct)
		rr.Does = rr.Acts.Does()
		ms.Releases = append(ms.Releases, rr)
	}
	ms.Path, ms.Shortcut = paths(m)
	return ms, nil
}

// paths describes the move's way through the phases, with and without
// triggers.
func paths(m move.Move) (path, shortcut string) {
	if m.Triggers {
		return "legacy -> write-both (triggers installed) -> read-new -> write-new -> contracted",
			"triggers keep old and new in sync for any mix of releases, so one new release (reading and writing new) can replace legacy directly: two releases (the new one, then the one that contracts) instead of four"
	}
	return "legacy -> write-both -> read-new -> write-new -> contracted, one rolling restart per phase (release+1 writes both, release+2 reads new, release+3 writes new only)",
		"with triggers (triggers: true in the plan) the database writes both for legacy instances and old for new ones, so one release could go from legacy to write-new: two releases instead of four"
}

// WriteText renders the status for a person.
func (s Status) WriteText(w io.Writer) {
	if len(s.Moves) == 0 {
		fmt.Fprintln(w, "Moves: none declared")
		return
	}
	fmt.Fprintln(w, "Moves:")
	for _, m := range s.Moves {
		m.WriteText(w, "  ")
	}
}

// WriteText renders one move, each line starting with indent.
func (m MoveStatus) WriteText(w io.Writer, indent string) {
	p := func(format string, args ...any) { fmt.Fprintf(w, indent+format+"\n", args...) }
	trig := ""
	if m.Triggers {
		trig = ", kept in sync by triggers"
	}
	p("%s: %s -> %s%s", m.Name, m.From, m.To, trig)
	if m.Description != "" {
		p("  %s", m.Description)
	}
	fin := ""
	switch {
	case m.Finalized:
		fin = fmt.Sprintf(" (finalized at release %d: no way back)", m.FinalizedRelease)
	case m.RollbackOpen:
		fin = " (rollback window open until finalize)"
	}
	if d := m.Definition; d != nil {
		p("  definition: version %d, digest %.12s, recorded %s", d.Version, d.Digest, d.RecordedAt.Format(time.RFC3339))
	} else {
		p("  definition: not recorded in the ledger yet (tandem moves apply --plan FILE, or the first advance, records it)")
	}
	if m.SyncTriggers != "" {
		p("  sync triggers: %s", m.SyncTriggers)
	}
	if m.PhaseSince.IsZero() {
		p("  phase: %s (not in the ledger yet: no transition made)%s", m.Phase, fin)
	} else {
		p("  phase: %s since %s%s", m.Phase, m.PhaseSince.Format(time.RFC3339), fin)
	}
	if len(m.Releases) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "%s    RELEASE\tSHIPS\tACTS ON\tDOES\tINSTANCES\n", indent)
		for _, r := range m.Releases {
			ships := strings.Join(r.Ships, ", ")
			if ships == "" {
				ships = "-"
			}
			fmt.Fprintf(tw, "%s    %d\t%s\t%s\t%s\t%d\n", indent, r.Release, ships, r.Acts, r.Does, r.Instances)
		}
		tw.Flush()
	}
	b := m.Backfill
	switch {
	case b.Complete:
		p("  backfill: complete, %d rows", b.RowsDone)
	case b.Started:
		p("  backfill: %s %.1f%% (%d of %d rows)", bar(b.Percent, 20), b.Percent, b.RowsDone, b.RowsTotal)
	default:
		p("  backfill: not started")
	}
	if r := m.Runner; r != nil && r.Alive {
		p("  runner: %s is running on host %s, pid %d, since %s", r.Op, r.Host, r.PID, r.Since.UTC().Format(time.RFC3339))
	} else if r != nil {
		p("  runner: %s on host %s, pid %d (since %s) is gone without finishing: %s resumes from the cursor at once", r.Op, r.Host, r.PID, r.Since.UTC().Format(time.RFC3339), rerunCommand(m.Name, r.Op))
	}
	// Old is gone once contracted: its freshness no longer means anything.
	if m.Reverse != nil && m.Phase != move.Contracted {
		p("  reverse backfill (old from new): %.1f%% (%d of %d rows), old stale: %v", m.Reverse.Percent, m.Reverse.RowsDone, m.Reverse.RowsTotal, m.OldStale)
	}
	ver := "never"
	if m.VerifiedAt != nil {
		ver = m.VerifiedAt.Format(time.RFC3339)
		if m.Mismatches != nil {
			ver += fmt.Sprintf(", %d mismatch(es)", *m.Mismatches)
		}
	}
	p("  verified: %s; failed rows: %d", ver, m.FailedRows)
	for _, b := range m.Backups {
		p("  %s", b)
	}
	for _, b := range m.Problems {
		if b.Kind == BlockInterrupted {
			p("  INTERRUPTED: %s", b.Message)
		} else {
			p("  NOT SAFE [%s]: %s", b.Kind, b.Message)
		}
	}
	switch {
	case m.Next == nil:
		p("  done: the old column is dropped")
	case m.Next.Open && Irreversible(m.Phase, m.Next.To):
		p("  next: %s is open: tandem moves advance %s (it cannot be undone: it asks first, a script gives --yes, and --backup FILE takes a copy of the database first)", m.Next.To, m.Name)
	case m.Next.Open:
		p("  next: %s is open: tandem moves advance %s", m.Next.To, m.Name)
	default:
		p("  next: %s is blocked:", m.Next.To)
		for _, bl := range m.Next.Blockers {
			p("    - [%s] %s", bl.Kind, bl.Message)
		}
	}
	p("  path: %s", m.Path)
	p("  shortcut: %s", m.Shortcut)
}

func bar(pct float64, width int) string {
	n := int(pct / 100 * float64(width))
	n = max(0, min(width, n))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
