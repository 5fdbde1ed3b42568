package upgradepath

import (
	"fmt"
	"slices"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
)

// Range is a range of releases, both ends included: From 0 is open below,
// To 0 open above.
type Range struct {
	From, To int64
}

// Label writes the range for people: "<= 41", "42", "43-44", ">= 45".
func (r Range) Label() string {
	switch {
	case r.From == 0 && r.To == 0:
		return "any"
	case r.From == 0:
		return fmt.Sprintf("<= %d", r.To)
	case r.To == 0:
		return fmt.Sprintf(">= %d", r.From)
	case r.From == r.To:
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// representative is a release of the range: every release of a range acts
// the same on every move.
func (r Range) representative() int64 {
	if r.From == 0 {
		return max(r.To, 0)
	}
	return r.From
}

// What a release may do at a phase (Cell).
const (
	MayStart   = "yes"     // may start and run
	MayRunOnly = "running" // may keep running, may not start
	MayNot     = "no"      // may not run
)

// Table is the compatibility table of a set of moves: for each phase of
// each move (the rows), what each range of releases (the columns) may do.
type Table struct {
	Columns []Range
	Moves   []MoveTable
}

// MoveTable is one move's rows.
type MoveTable struct {
	Move     string
	Triggers bool
	// Phase is where the ledger has the move.
	Phase move.Phase
	Rows  []Row
}

// Row is one phase of a move.
type Row struct {
	Phase move.Phase
	// Cells holds, per column, MayStart, MayRunOnly or MayNot.
	Cells []string
	// AdvanceNeeds is the lowest release every instance must run before
	// the move leaves this phase (with the backfill or finalize its gate
	// needs); 0 when it waits for no instance, -1 at contracted.
	AdvanceNeeds int64
}

// Compatibility builds the table of moves: the columns are the ranges the
// moves' releases cut, and a cell follows dualwrite.CheckRelease (may a
// build of that release start, or keep running, with the move at that
// phase). phases gives where the ledger has each move (missing: legacy).
func Compatibility(moves []move.Move, phases map[string]move.Phase) Table {
	var cuts []int64
	for _, m := range moves {
		for _, p := range move.Phases()[1:] {
			if r := m.Releases.For(p); r > 0 {
				cuts = append(cuts, r)
			}
		}
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	var t Table
	if len(cuts) == 0 {
		t.Columns = []Range{{}}
	} else {
		if cuts[0] > 1 {
			t.Columns = append(t.Columns, Range{To: cuts[0] - 1})
		}
		for i, c := range cuts {
			r := Range{From: c}
			if i+1 < len(cuts) {
				r.To = cuts[i+1] - 1
			}
			t.Columns = append(t.Columns, r)
		}
	}
	for _, m := range moves {
		mt := MoveTable{Move: m.Name, Triggers: m.Triggers, Phase: phases[m.Name]}
		for _, p := range move.Phases() {
			row := Row{Phase: p, AdvanceNeeds: -1}
			for _, c := range t.Columns {
				r := c.representative()
				switch {
				case dualwrite.CheckRelease(m, r, p, true) == nil:
					row.Cells = append(row.Cells, MayStart)
				case dualwrite.CheckRelease(m, r, p, false) == nil:
					row.Cells = append(row.Cells, MayRunOnly)
				default:
					row.Cells = append(row.Cells, MayNot)
				}
			}
			if next, ok := p.Next(); ok {
				row.AdvanceNeeds = advanceNeeds(m, p, next, t.Columns)
			}
			mt.Rows = append(mt.Rows, row)
		}
		t.Moves = append(t.Moves, mt)
	}
	return t
}

// advanceNeeds is the lowest release whose instances satisfy every wait
// of the way from p to next: the transition's, and the backfill's before
// read-new or finalize's before contract.
func advanceNeeds(m move.Move, p, next move.Phase, cols []Range) int64 {
	waits := []func(move.Phase) bool{dualwrite.InstanceWait(m, p, next)}
	switch next {
	case move.ReadNew:
		waits = append(waits, dualwrite.OpInstanceWait(m, dualwrite.OpBackfill))
	case move.Contracted:
		waits = append(waits, dualwrite.OpInstanceWait(m, dualwrite.OpFinalize))
	}
	if !slices.ContainsFunc(waits, func(w func(move.Phase) bool) bool { return w != nil }) {
		return 0
	}
	for _, c := range cols {
		r := c.representative()
		acts := dualwrite.Effective(p, m.Releases.Highest(r))
		if !slices.ContainsFunc(waits, func(w func(move.Phase) bool) bool { return w != nil && !w(acts) }) {
			if c.From == 0 {
				return 0
			}
			return c.From
		}
	}
	return -1
}
