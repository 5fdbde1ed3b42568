package dualwrite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// Step is one DDL step of a transition, as logged in tandem_steps.
type Step struct {
	ID          string   `json:"id"` // "<move>/<phase>/<n>-<kind>", stable across runs
	Move        string   `json:"move"`
	Description string   `json:"description"`
	SQL         []string `json:"sql"`
	// Skipped is set when the live schema shows the step already done (a
	// healed interruption, or DDL applied by hand or by a migration tool).
	Skipped bool `json:"skipped,omitempty"`
	// Healed is set when the log showed the step proposed but never
	// applied: an earlier run was interrupted, and this one completed it.
	Healed bool `json:"healed,omitempty"`

	done func(ctx context.Context, q dialect.Querier) (bool, error)
	run  func(ctx context.Context, q dialect.Querier) error
}

func quoteAll(d sqldialect.Dialect, names []string) ([]string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		q, err := d.Quote(n)
		if err != nil {
			return nil, err
		}
		out[i] = q
	}
	return out, nil
}

// StepsFor returns the DDL steps of the transition into phase to (from the
// phase before it) for m on engine d, without a database. Only write-both
// (expand, trigger install) and contracted (trigger drop, column drop) have
// any. It is what `tandem moves sql` prints.
func StepsFor(m move.Move, engine dialect.Name, to move.Phase) ([]Step, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return nil, derr
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	id := func(n int, kind string) string { return fmt.Sprintf("%s/%s/%d-%s", m.Name, to, n, kind) }
	tbl, _ := d.Quote(m.Table)
	keys, _ := quoteAll(d, m.Key)
	oldc, _ := d.Quote(m.Old)
	newc, _ := d.Quote(m.New.Column)
	var steps []Step
	switch to {
	case move.WriteBoth:
		typ := m.New.Type.For(d.Name())
		if m.CrossTable() {
			nt, _ := d.Quote(m.New.Table)
			nkeys, _ := quoteAll(d, m.New.Key)
			var ktypes []string
			for _, kt := range m.New.KeyType {
				ktypes = append(ktypes, kt.For(d.Name()))
			}
			s := Step{ID: id(1, "create-table"), Move: m.Name,
				Description: fmt.Sprintf("create table %s (%s, %s) keyed to %s", m.New.Table, strings.Join(m.New.Key, ", "), m.New.Column, m.Table),
				done:        tableExists(d, m.New.Table)}
			if typ != "" && len(ktypes) == len(nkeys) && !slices.Contains(ktypes, "") {
				s.SQL = []string{sqldialect.CreateMoveTableSQL(d, nt, nkeys, ktypes, newc, typ, tbl, keys)}
			}
			steps = append(steps, s)
		} else {
			s := Step{ID: id(1, "add-column"), Move: m.Name,
				Description: fmt.Sprintf("add column %s.%s", m.Table, m.New.Column),
				done:        columnExists(d, m.Table, m.New.Column)}
			if typ != "" {
				s.SQL = []string{sqldialect.AddColumnSQL(d, tbl, newc, typ)}
			}
			steps = append(steps, s)
		}
		if m.Triggers {
			set, err := triggers.ForMove(d.Name(), m)
			if err != nil {
				return nil, err
			}
			var stmts []string
			for _, o := range set.Objects {
				stmts = append(stmts, o.Create)
			}
			steps = append(steps, Step{ID: id(2, "install-triggers"), Move: m.Name,
				Description: fmt.Sprintf("install %d sync trigger object(s) keeping %s and %s in step", len(set.Objects), m.Old, m.New.Column),
				SQL:         stmts,
				done: func(ctx context.Context, q dialect.Querier) (bool, error) {
					_, err := triggers.Check(ctx, q, set)
					if errors.Is(err, triggers.ErrDrift) {
						return false, nil
					}
					return err == nil, err
				},
				run: func(ctx context.Context, q dialect.Querier) error {
					_, err := triggers.Install(ctx, q, set)
					return err
				}})
		}
	case move.Contracted:
		n := 1
		if m.Triggers {
			set, err := triggers.ForMove(d.Name(), m)
			if err != nil {
				return nil, err
			}
			var stmts []string
			for _, o := range dropOrder(set.Objects) {
				stmts = append(stmts, o.Drop)
			}
			steps = append(steps, Step{ID: id(n, "drop-triggers"), Move: m.Name,
				Description: "drop the sync triggers",
				SQL:         stmts,
				done: func(ctx context.Context, q dialect.Querier) (bool, error) {
					objs, err := sqldialect.ListTriggerObjects(ctx, q, d, m.Name)
					return len(objs) == 0, err
				},
				run: func(ctx context.Context, q dialect.Querier) error {
					_, err := triggers.Drop(ctx, q, d.Name(), m.Name)
					return err
				}})
			n++
		}
		steps = append(steps, Step{ID: id(n, "drop-column"), Move: m.Name,
			Description: fmt.Sprintf("drop column %s.%s", m.Table, m.Old),
			SQL:         []string{sqldialect.DropColumnSQL(d, tbl, oldc)},
			done: func(ctx context.Context, q dialect.Querier) (bool, error) {
				ok, err := columnExists(d, m.Table, m.Old)(ctx, q)
				return !ok, err
			}})
	}
	return steps, nil
}

func dropOrder(objs []triggers.Object) []triggers.Object {
	var trig, fn []triggers.Object
	for _, o := range objs {
		if o.Kind == triggers.KindFunction {
			fn = append(fn, o)
		} else {
			trig = append(trig, o)
		}
	}
	return append(trig, fn...)
}

func tableExists(d sqldialect.Dialect, table string) func(context.Context, dialect.Querier) (bool, error) {
	return func(ctx context.Context, q dialect.Querier) (bool, error) { return d.TableExists(ctx, q, table) }
}

func columnExists(d sqldialect.Dialect, table, col string) func(context.Context, dialect.Querier) (bool, error) {
	return func(ctx context.Context, q dialect.Querier) (bool, error) {
		cols, err := d.Columns(ctx, q, table)
		if err != nil {
			return false, err
		}
		for _, c := range cols {
			if strings.EqualFold(c.Name, col) {
				return true, nil
			}
		}
		return false, nil
	}
}

// applyStep runs one step under the move lock: it logs the step as
// proposed, checks the live schema, runs the SQL unless the step is done
// already, and logs it applied. A step found proposed but not applied is an
// interrupted earlier run: it is checked and completed, and marked Healed.
func applyStep(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, s *Step, release int64, now func() time.Time) error {
	var applied sql.NullTime
	err := q.GetContext(ctx, &applied, q.Rebind(`SELECT applied_at FROM `+StepsTable+` WHERE id = ?`), s.ID)
	logged := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if logged && !applied.Valid {
		s.Healed = true
	}
	done, err := s.done(ctx, q)
	if err != nil {
		return fmt.Errorf("check step %s: %w", s.ID, err)
	}
	text := strings.Join(s.SQL, ";\n")
	if !logged {
		if _, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+StepsTable+` (id, move, app_release, description, proposed_at, sql_text) VALUES (?, ?, ?, ?, ?, ?)`),
			s.ID, s.Move, release, s.Description, now(), text); err != nil {
			return fmt.Errorf("log step %s: %w", s.ID, err)
		}
	}
	if done {
		s.Skipped = true
	} else {
		if len(s.SQL) == 0 && s.run == nil {
			return &StepError{Move: s.Move, Step: s.ID, Err: errors.New("nothing to run: declare the new column's type (New.Type, and New.KeyType for a new table) or create it yourself")}
		}
		var err error
		if s.run != nil {
			err = s.run(ctx, q)
		} else {
			for _, stmt := range s.SQL {
				if _, err = q.ExecContext(ctx, stmt); err != nil {
					break
				}
			}
		}
		if err != nil {
			return &StepError{Move: s.Move, Step: s.ID, SQL: text, Err: err}
		}
	}
	if logged && applied.Valid {
		return nil
	}
	_, err = q.ExecContext(ctx, q.Rebind(`UPDATE `+StepsTable+` SET applied_at = ?, sql_text = ? WHERE id = ?`), now(), text, s.ID)
	return err
}

// StepLog is one row of tandem_steps.
type StepLog struct {
	ID          string     `db:"id" json:"id"`
	Move        string     `db:"move" json:"move"`
	Release     int64      `db:"app_release" json:"release"`
	Description string     `db:"description" json:"description"`
	ProposedAt  time.Time  `db:"proposed_at" json:"proposed_at"`
	AppliedAt   *time.Time `db:"applied_at" json:"applied_at,omitempty"`
	SQL         string     `db:"sql_text" json:"sql"`
}

// Interrupted reports whether the step was proposed and never applied.
func (s StepLog) Interrupted() bool { return s.AppliedAt == nil }

func readSteps(ctx context.Context, q dialect.Querier, moveName string) ([]StepLog, error) {
	var out []StepLog
	err := q.SelectContext(ctx, &out, q.Rebind(`SELECT id, move, app_release, description, proposed_at, applied_at, sql_text FROM `+StepsTable+` WHERE move = ? ORDER BY proposed_at, id`), moveName)
	return out, err
}

// RecordStep logs, as applied now, a DDL step run outside a phase
// transition (an operator repairing a move's triggers by hand, say), so the
// ledger keeps every change to the schema. kind names it ("install-triggers").
func RecordStep(ctx context.Context, q dialect.Querier, moveName string, release int64, kind, description string, sqlText []string, now time.Time) (string, error) {
	if err := dialect.CheckIdentifier(moveName); err != nil {
		return "", fmt.Errorf("dualwrite: record step: %w", err)
	}
	id := fmt.Sprintf("%s/manual-%s-%d", moveName, kind, now.UnixNano())
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+StepsTable+` (id, move, app_release, description, proposed_at, applied_at, sql_text) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		id, moveName, release, description, now, now, strings.Join(sqlText, ";\n"))
	if err != nil {
		return "", fmt.Errorf("dualwrite: record step %s: %w", id, err)
	}
	return id, nil
}
