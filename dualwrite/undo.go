package dualwrite

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// ErrNoInverse means the DDL of a phase cannot be undone by DDL:
// contracting dropped the old column and its data.
var ErrNoInverse = errors.New("no inverse")

// NoInverseError is the DDL of a phase that cannot be undone.
type NoInverseError struct {
	Move   string
	Phase  move.Phase
	Reason string
}

func (e *NoInverseError) Error() string {
	return fmt.Sprintf("entering %s of move %s has no inverse: %s", e.Phase, e.Move, e.Reason)
}

func (e *NoInverseError) Unwrap() error { return ErrNoInverse }

// UndoStepsFor returns the DDL that takes the schema back from phase to to
// the schema of the phase before it, for the Down half of migration-tool
// files. For write-both it drops the sync triggers (when the move has
// them) and then the new column, or the new table of a cross-table move.
// The statements mirror StepsFor's: the i-th from the end undoes the i-th
// of StepsFor, so a tool that runs one statement per migration can pair
// them. A phase without DDL returns no steps. Contracted has no inverse,
// since it dropped the old column's data: the error is a *NoInverseError
// (ErrNoInverse).
//
// tandem itself never runs these: going back a phase keeps the new column
// and triggers, and they are only dropped by an operator who undoes a
// write-both applied with a migration tool.
func UndoStepsFor(m move.Move, engine dialect.Name, to move.Phase) ([]Step, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return nil, derr
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	id := func(n int, kind string) string { return fmt.Sprintf("%s/undo-%s/%d-%s", m.Name, to, n, kind) }
	switch to {
	case move.WriteBoth:
		var steps []Step
		if m.Triggers {
			set, err := triggers.ForMove(d.Name(), m)
			if err != nil {
				return nil, err
			}
			objs := slices.Clone(set.Objects)
			slices.Reverse(objs) // a trigger goes before the function it calls
			var stmts []string
			for _, o := range objs {
				stmts = append(stmts, o.Drop)
			}
			steps = append(steps, Step{ID: id(1, "drop-triggers"), Move: m.Name, Description: "drop the sync triggers", SQL: stmts})
		}
		if m.CrossTable() {
			nt, _ := d.Quote(m.New.Table)
			steps = append(steps, Step{ID: id(len(steps)+1, "drop-table"), Move: m.Name,
				Description: fmt.Sprintf("drop table %s", m.New.Table), SQL: []string{sqldialect.DropMoveTableSQL(d, nt)}})
		} else {
			tbl, _ := d.Quote(m.Table)
			newc, _ := d.Quote(m.New.Column)
			steps = append(steps, Step{ID: id(len(steps)+1, "drop-column"), Move: m.Name,
				Description: fmt.Sprintf("drop column %s.%s", m.Table, m.New.Column), SQL: []string{sqldialect.DropColumnSQL(d, tbl, newc)}})
		}
		return steps, nil
	case move.Contracted:
		return nil, &NoInverseError{Move: m.Name, Phase: to, Reason: fmt.Sprintf("it dropped column %s.%s and its data; only a backup taken before the contract brings it back", m.Table, m.Old)}
	}
	return nil, nil
}
