package main

import (
	"github.com/tandem-go/tandem/upgradepath"
)

// pathDoc is `tandem path --to RELEASE --json`: the ordered steps to a
// fleet at the target, and what blocks right now.
type pathDoc struct {
	Database string `json:"database"`
	Target   int64  `json:"target"`
	// TargetKnown is false when no move names the target and no instance
	// of it ever registered: it is planned as carrying every phase the
	// moves name up to it.
	TargetKnown bool `json:"target_known"`
	// Running lists the releases instances run now, lowest first.
	Running []int64        `json:"running"`
	Steps   []pathStepJSON `json:"steps"`
	// Done is true when nothing is left to do.
	Done bool `json:"done"`
	// Blockers is what holds the first step right now, as status reports
	// it, each with the command to run: every move's problems, instances
	// missing or in error, and what the first step's own gate waits for
	// (less what that step clears). Safe is true only when it is empty.
	Blockers []blockerJSON `json:"blockers"`
	Safe     bool          `json:"safe"`
	// Exit is what the command exits with: 0 when safe, else 3 when
	// waiting clears every blocker, 5 when someone must act.
	Exit int `json:"exit"`
}

// pathStepJSON is one step of a path.
type pathStepJSON struct {
	N int `json:"n"`
	// Kind is roll, freeze, thaw, advance, backfill, verify, finalize or
	// contract.
	Kind string `json:"kind"`
	// Move is null for a roll and a freeze or thaw of every move.
	Move *string `json:"move"`
	// Release and Instances: for a roll, what it restarts on and whom.
	Release   *int64   `json:"release"`
	Instances []string `json:"instances"`
	// From and To: the phases of an advance or a contract, else null.
	From *string `json:"from"`
	To   *string `json:"to"`
	// Command is the exact command to run (for a roll: the one that
	// returns once it is done).
	Command      string `json:"command"`
	Irreversible bool   `json:"irreversible"`
	Frozen       bool   `json:"frozen"`
	Offline      bool   `json:"offline"`
	// OldestStart is, for an advance or contract, the oldest release that
	// may start on the move once it ran; null otherwise.
	OldestStart *int64 `json:"oldest_start"`
	Why         string `json:"why"`
}

func pathView(p upgradepath.Path, st statusDoc) pathDoc {
	d := pathDoc{Database: st.Database, Target: p.Target, TargetKnown: p.TargetKnown, Running: nonNil(p.Running), Steps: []pathStepJSON{}, Done: p.Done(),
		Blockers: []blockerJSON{}}
	for _, b := range p.Now {
		d.Blockers = append(d.Blockers, blockerView(b.Move, "", b.Phase, b.Blocker))
	}
	d.Safe = len(d.Blockers) == 0
	if !d.Safe {
		d.Exit, _ = exitCode(verdict(d.Blockers, ""))
		if d.Exit == exitBadInput {
			d.Exit = exitAttention
		}
	}
	for i, s := range p.Steps {
		js := pathStepJSON{N: i + 1, Kind: string(s.Kind), Move: strOrNil(s.Move), Instances: nonNil(s.Instances), Command: s.Command,
			Irreversible: s.Irreversible, Frozen: s.Frozen, Offline: s.Offline, Why: s.Why}
		if s.Kind == upgradepath.StepRoll {
			r := s.Release
			js.Release = &r
		}
		if s.Kind == upgradepath.StepAdvance || s.Kind == upgradepath.StepContract {
			js.From, js.To = strOrNil(s.From.String()), strOrNil(s.To.String())
			o := s.Oldest
			js.OldestStart = &o
		}
		d.Steps = append(d.Steps, js)
	}
	return d
}

// compatDoc is `tandem path --json` without --to: the table of releases
// that may run together at each phase of each move.
type compatDoc struct {
	Database string `json:"database"`
	// Columns are the ranges of releases the moves' releases cut, in
	// order; every release of a range acts the same on every move.
	Columns []rangeJSON      `json:"columns"`
	Moves   []compatMoveJSON `json:"moves"`
}

// rangeJSON is a range of releases, both ends included; from is null
// when open below, to when open above.
type rangeJSON struct {
	From  *int64 `json:"from"`
	To    *int64 `json:"to"`
	Label string `json:"label"`
}

type compatMoveJSON struct {
	Move     string `json:"move"`
	Triggers bool   `json:"triggers"`
	// Phase is where the ledger has the move.
	Phase string          `json:"phase"`
	Rows  []compatRowJSON `json:"rows"`
}

// compatRowJSON is one phase: per column "yes" (may start), "running"
// (may keep running, may not start) or "no".
type compatRowJSON struct {
	Phase   string   `json:"phase"`
	Current bool     `json:"current"`
	Cells   []string `json:"cells"`
	// AdvanceNeeds is the lowest release every instance must run before
	// the move leaves the phase: 0 for any, null at contracted.
	AdvanceNeeds *int64 `json:"advance_needs"`
}

func int64OrNil(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func compatView(t upgradepath.Table, database string) compatDoc {
	d := compatDoc{Database: database, Columns: []rangeJSON{}, Moves: []compatMoveJSON{}}
	for _, c := range t.Columns {
		d.Columns = append(d.Columns, rangeJSON{From: int64OrNil(c.From), To: int64OrNil(c.To), Label: c.Label()})
	}
	for _, m := range t.Moves {
		jm := compatMoveJSON{Move: m.Move, Triggers: m.Triggers, Phase: m.Phase.String(), Rows: []compatRowJSON{}}
		for _, r := range m.Rows {
			jr := compatRowJSON{Phase: r.Phase.String(), Current: r.Phase == m.Phase, Cells: nonNil(r.Cells)}
			if r.AdvanceNeeds >= 0 {
				n := r.AdvanceNeeds
				jr.AdvanceNeeds = &n
			}
			jm.Rows = append(jm.Rows, jr)
		}
		d.Moves = append(d.Moves, jm)
	}
	return d
}
