package main

import "github.com/tandem-go/tandem/dualwrite"

// moveJSON is one move, in `status` and `moves list`.
type moveJSON struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	From        string `json:"from"` // table.column
	To          string `json:"to"`
	Triggers    bool   `json:"triggers"`
	// SyncTriggers says in words whether the database holds the triggers
	// the phase needs; null for a move without triggers (and none found).
	SyncTriggers *string `json:"sync_triggers"`
	Phase        string  `json:"phase"`
	// PhaseSince is null while no transition was made.
	PhaseSince *rfc3339 `json:"phase_since"`
	// Definition is null while the ledger does not record the move.
	Definition *definitionRefJSON `json:"definition"`
	// NextGate is the gate of the next phase; null once contracted.
	NextGate *gateJSON `json:"next_gate"`
	// Problems is what is wrong now besides the next gate (an interrupted
	// step, triggers not as the phase needs); Blockers is every blocker of
	// the move: its problems, then the next gate's.
	Problems        []blockerJSON         `json:"problems"`
	Blockers        []blockerJSON         `json:"blockers"`
	Releases        []releaseJSON         `json:"releases"`
	Instances       []blockerInstanceJSON `json:"instances"`
	Backfill        backfillStateJSON     `json:"backfill"`
	ReverseBackfill *backfillStateJSON    `json:"reverse_backfill"` // null: never needed
	// Runner is the backfill or verify running now, or the one that died
	// running; null when none.
	Runner     *runnerJSON `json:"runner"`
	FailedRows int64       `json:"failed_rows"`
	// VerifiedAt and Mismatches are null until a verify ran.
	VerifiedAt *rfc3339 `json:"verified_at"`
	Mismatches *int64   `json:"mismatches"`
	OldStale   bool     `json:"old_stale"`
	Finalized  bool     `json:"finalized"`
	// FinalizedRelease is null until finalized.
	FinalizedRelease *int64        `json:"finalized_release"`
	RollbackOpen     bool          `json:"rollback_open"`
	Steps            []stepLogJSON `json:"steps"`
	Interrupted      []stepLogJSON `json:"interrupted"`
	History          []historyJSON `json:"history"`
	// Backups are the copies taken before the move's irreversible steps.
	Backups  []backupJSON `json:"backups"`
	Path     string       `json:"path"`
	Shortcut string       `json:"shortcut"`
}

type definitionRefJSON struct {
	Version    int64    `json:"version"`
	Digest     string   `json:"digest"`
	RecordedAt *rfc3339 `json:"recorded_at"`
}

type releaseJSON struct {
	Release   int64    `json:"release"`
	Ships     []string `json:"ships"` // phases this release is the first to carry
	CanAct    string   `json:"can_act"`
	Acts      string   `json:"acts"`
	Does      string   `json:"does"`
	Instances int      `json:"instances"`
}

type backfillStateJSON struct {
	Started   bool     `json:"started"`
	Complete  bool     `json:"complete"`
	RowsDone  int64    `json:"rows_done"`
	RowsTotal int64    `json:"rows_total"`
	Percent   float64  `json:"percent"`
	Cursor    *string  `json:"cursor"` // null before the first batch
	StartedAt *rfc3339 `json:"started_at"`
	DoneAt    *rfc3339 `json:"done_at"`
}

type runnerJSON struct {
	Op    string   `json:"op"`
	Host  string   `json:"host"`
	PID   int      `json:"pid"`
	Since *rfc3339 `json:"since"`
	Alive bool     `json:"alive"`
}

type stepLogJSON struct {
	ID          string   `json:"id"`
	Release     int64    `json:"release"`
	Description string   `json:"description"`
	ProposedAt  *rfc3339 `json:"proposed_at"`
	AppliedAt   *rfc3339 `json:"applied_at"` // null: interrupted before it applied
	SQL         string   `json:"sql"`
}

type historyJSON struct {
	Seq     int64    `json:"seq"`
	From    string   `json:"from"`
	To      string   `json:"to"`
	At      *rfc3339 `json:"at"`
	Release int64    `json:"release"`
	Note    *string  `json:"note"`
}

func backfillStateView(b dualwrite.BackfillState) backfillStateJSON {
	return backfillStateJSON{Started: b.Started, Complete: b.Complete, RowsDone: b.RowsDone, RowsTotal: b.RowsTotal, Percent: b.Percent,
		Cursor: strOrNil(b.Cursor), StartedAt: timeOrNil(b.StartedAt), DoneAt: timeOrNil(b.DoneAt)}
}

func stepLogsView(steps []dualwrite.StepLog) []stepLogJSON {
	out := make([]stepLogJSON, 0, len(steps))
	for _, s := range steps {
		out = append(out, stepLogJSON{ID: s.ID, Release: s.Release, Description: s.Description, ProposedAt: ts(s.ProposedAt),
			AppliedAt: timeOrNil(s.AppliedAt), SQL: s.SQL})
	}
	return out
}

func historyView(h dualwrite.History) historyJSON {
	return historyJSON{Seq: h.Seq, From: h.From, To: h.To, At: ts(h.At), Release: h.Release, Note: h.Note}
}

func moveView(m dualwrite.MoveStatus) moveJSON {
	out := moveJSON{Name: m.Name, Description: m.Description, From: m.From, To: m.To, Triggers: m.Triggers,
		SyncTriggers: strOrNil(m.SyncTriggers), Phase: m.Phase.String(), PhaseSince: ts(m.PhaseSince),
		Problems: blockersView(m.Name, "", m.Phase, m.Problems), Releases: []releaseJSON{}, Instances: []blockerInstanceJSON{},
		Backfill: backfillStateView(m.Backfill), FailedRows: m.FailedRows, VerifiedAt: timeOrNil(m.VerifiedAt),
		Mismatches: m.Mismatches, OldStale: m.OldStale, Finalized: m.Finalized, RollbackOpen: m.RollbackOpen,
		Steps: stepLogsView(m.Steps), Interrupted: stepLogsView(m.Interrupted), History: []historyJSON{}, Backups: backupsView(m.Backups), Path: m.Path, Shortcut: m.Shortcut}
	if d := m.Definition; d != nil {
		out.Definition = &definitionRefJSON{Version: d.Version, Digest: d.Digest, RecordedAt: ts(d.RecordedAt)}
	}
	out.Blockers = append([]blockerJSON{}, out.Problems...)
	if m.Next != nil {
		g := gateView(*m.Next)
		out.NextGate = &g
		out.Blockers = append(out.Blockers, g.Blockers...)
	}
	for _, r := range m.Releases {
		out.Releases = append(out.Releases, releaseJSON{Release: r.Release, Ships: nonNil(r.Ships), CanAct: r.CanAct.String(),
			Acts: r.Acts.String(), Does: r.Does, Instances: r.Instances})
	}
	for _, in := range m.Instances {
		out.Instances = append(out.Instances, blockerInstanceJSON{ID: in.ID, Service: in.Service, Host: in.Host, Release: in.Release,
			State: in.State, Phase: strOrNil(in.Acts), CanAct: strOrNil(in.CanAct)})
	}
	if m.Reverse != nil {
		r := backfillStateView(*m.Reverse)
		out.ReverseBackfill = &r
	}
	if r := m.Runner; r != nil {
		out.Runner = &runnerJSON{Op: r.Op, Host: r.Host, PID: r.PID, Since: ts(r.Since), Alive: r.Alive}
	}
	if m.Finalized {
		rel := m.FinalizedRelease
		out.FinalizedRelease = &rel
	}
	for _, h := range m.History {
		out.History = append(out.History, historyView(h))
	}
	return out
}

// movesDoc is `tandem moves list --json`.
type movesDoc struct {
	TakenAt *rfc3339   `json:"taken_at"`
	Floor   *int64     `json:"floor"` // null: no instance registered
	Moves   []moveJSON `json:"moves"`
}

func movesView(st dualwrite.Status) movesDoc {
	out := movesDoc{TakenAt: ts(st.TakenAt), Moves: []moveJSON{}}
	if st.Floor > 0 {
		f := st.Floor
		out.Floor = &f
	}
	for _, m := range st.Moves {
		out.Moves = append(out.Moves, moveView(m))
	}
	return out
}
