package dualwrite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/jmoiron/sqlx"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// fragmentCase is one kind of move the fragment path must route: its
// tables, and a value in the new form with the old form it is stored as.
type fragmentCase struct {
	name   string
	m      func() move.Move
	create []string
	// value is the moved value written for key k, in the new form; old is
	// what old holds for it.
	value func(k int64) any
	old   func(k int64) any
}

func fragmentCases() []fragmentCase {
	cents := func(k int64) any { return 1000 + k }
	price := func(k int64) any { return float64(1000+k) / 100 }
	sqlOnly := func() move.Move {
		m := priceMove()
		m.Forward.Go, m.Backward.Go = nil, nil
		return m
	}
	products := []string{`CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,2), price_cents BIGINT)`}
	return []fragmentCase{
		{name: "same_table_go", m: priceMove, create: products, value: cents, old: price},
		{name: "same_table_sql", m: sqlOnly, create: products, value: cents, old: price},
		{name: "cross_table", m: propsMove, create: []string{
			`CREATE TABLE resource (id BIGINT PRIMARY KEY, name VARCHAR(50), properties TEXT)`,
			`CREATE TABLE resource_properties_data (resource_id BIGINT PRIMARY KEY, data TEXT)`,
		}, value: func(k int64) any { return fmt.Sprintf("props-%d", k) }, old: func(k int64) any { return fmt.Sprintf("props-%d", k) }},
	}
}

// TestFragments routes a moved value through the application's own
// statements at every phase, on every engine: a new row (the insert case),
// an UPDATE of the row, a SELECT of it, and the typed helpers, inside and
// outside transactions, through database/sql and sqlx, with and without
// sync triggers. What lands in old and new is checked against the phase's
// rules, and Router.Read (the reference) reads back what was written.
func TestFragments(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		for _, fc := range fragmentCases() {
			for _, withTriggers := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/triggers=%v", fc.name, withTriggers), func(t *testing.T) {
					runFragmentCase(t, db, fc, withTriggers)
				})
			}
		}
	})
}

func runFragmentCase(t *testing.T, db *dialect.DB, fc fragmentCase, withTriggers bool) {
	ctx := context.Background()
	m := fc.m()
	d := sqldialect.Of(db)
	src := sqldialect.MustQuote(d, m.Table)
	for _, s := range fc.create {
		mustExec(t, db, s)
	}
	t.Cleanup(func() {
		if withTriggers {
			if _, err := triggers.Drop(ctx, db, d.Name(), m.Name); err != nil {
				t.Errorf("drop triggers: %v", err)
			}
		}
		if m.CrossTable() {
			mustExec(t, db, `DROP TABLE `+sqldialect.MustQuote(d, m.New.Table))
		}
		mustExec(t, db, `DROP TABLE `+src)
	})
	if withTriggers {
		set, err := triggers.ForMove(d.Name(), m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := triggers.Install(ctx, db, set); err != nil {
			t.Fatal(err)
		}
	}
	r, err := dualwrite.NewRouter(m, d.Name())
	if err != nil {
		t.Fatal(err)
	}
	phases := move.Phases()
	if withTriggers {
		phases = phases[:len(phases)-1] // contract drops the triggers
	}
	var key int64
	for _, p := range phases {
		t.Run(p.String(), func(t *testing.T) {
			next := func() int64 { key++; return key }

			// The insert case: a new row, in one transaction with what the
			// phase writes in the new table.
			k := next()
			tx, err := db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback() // after a failure; a no-op once committed
			ins, err := r.Insert(p, fc.value(k))
			if err != nil {
				t.Fatal(err)
			}
			a := r.Args()
			stmt := `INSERT INTO ` + src + ` (id, name` + ins.Columns() + `) VALUES (` + a.Bind(k) + `, ` + a.Bind("n") + ins.Values(a) + `)`
			if _, err := tx.ExecContext(ctx, stmt, a.Values()...); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
			if err := ins.Finish(ctx, tx, k); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			checkStored(t, db, r, m, p, k, fc.value(k), fc.old(k), withTriggers)

			// An UPDATE of the application's, setting its own column too,
			// outside a transaction where the phase writes one table only.
			k2 := next()
			mustExec(t, db, `INSERT INTO `+src+` (id, name) VALUES (?, 'x')`, k2)
			if err := r.Write(ctx, db, p, fc.value(k), k2); err != nil {
				t.Fatal(err)
			}
			var q dualwrite.Conn = db.DB()
			var utx *sqlx.Tx
			set, err := r.Set(p, fc.value(k2))
			if err != nil {
				t.Fatal(err)
			}
			a = r.Args()
			stmt = `UPDATE ` + src + ` SET name = ` + a.Bind("renamed")
			if set.Needed() {
				if utx, err = db.BeginTxx(ctx, nil); err != nil {
					t.Fatal(err)
				}
				defer utx.Rollback()
				q = utx
			}
			if !set.Empty() {
				stmt += ", " + set.Clauses(a)
			}
			stmt += ` WHERE id = ` + a.Bind(k2)
			if _, err := q.ExecContext(ctx, stmt, a.Values()...); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
			if err := set.Finish(ctx, q, k2); err != nil {
				t.Fatal(err)
			}
			if utx != nil {
				if err := utx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			checkStored(t, db, r, m, p, k2, fc.value(k2), fc.old(k2), withTriggers)

			// A SELECT of the application's, with the moved value in it.
			sel, err := r.Select(p, "s")
			if err != nil {
				t.Fatal(err)
			}
			a = r.Args()
			stmt = `SELECT s.name, ` + sel.Expr + ` FROM ` + src + ` s` + sel.Join + ` WHERE s.id = ` + a.Bind(k2)
			var name string
			if _, ok := fc.value(k2).(int64); ok {
				var got int64
				if err := db.QueryRowContext(ctx, stmt, a.Values()...).Scan(&name, dualwrite.Into(sel, &got)); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				if name != "renamed" || got != fc.value(k2) {
					t.Fatalf("%s: read %q, %v; want renamed, %v", stmt, name, got, fc.value(k2))
				}
			} else {
				var got sql.Null[string]
				if err := db.QueryRowContext(ctx, stmt, a.Values()...).Scan(&name, dualwrite.Into(sel, &got)); err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
				if name != "renamed" || !got.Valid || got.V != fc.value(k2) {
					t.Fatalf("%s: read %q, %v; want renamed, %v", stmt, name, got, fc.value(k2))
				}
			}

			// The typed helpers: outside a transaction on a *sql.DB (a
			// cross-table write begins its own), and inside a *sqlx.Tx.
			k3 := next()
			mustExec(t, db, `INSERT INTO `+src+` (id, name) VALUES (?, 'x')`, k3)
			writeTyped(t, ctx, db.DB(), r, p, fc.value(k3), k3)
			checkStored(t, db, r, m, p, k3, fc.value(k3), fc.old(k3), withTriggers)
			readTyped(t, ctx, db.DB(), r, p, k3, fc.value(k3))
			k4 := next()
			mustExec(t, db, `INSERT INTO `+src+` (id, name) VALUES (?, 'x')`, k4)
			tx, err = db.BeginTxx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			writeTyped(t, ctx, tx, r, p, fc.value(k4), k4)
			readTyped(t, ctx, tx, r, p, k4, fc.value(k4))
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
			checkStored(t, db, r, m, p, k4, fc.value(k4), fc.old(k4), withTriggers)

			// A missing row: nothing is written anywhere.
			missing := int64(1_000_000)
			if err := dualwrite.WriteValue(ctx, db.DB(), r, p, fc.value(1), missing); !errors.Is(err, dualwrite.ErrNoRow) {
				t.Fatalf("write of a missing row: %v", err)
			}
			if _, err := dualwrite.ReadValue[any](ctx, db, r, p, missing); !errors.Is(err, dualwrite.ErrNoRow) {
				t.Fatalf("read of a missing row: %v", err)
			}
			if m.CrossTable() {
				var n int
				if err := db.GetContext(ctx, &n, db.Rebind(`SELECT COUNT(*) FROM resource_properties_data WHERE resource_id = ?`), missing); err != nil || n != 0 {
					t.Fatalf("destination rows for a missing source row: %d %v", n, err)
				}
			}
		})
	}
}

func writeTyped(t *testing.T, ctx context.Context, q dualwrite.Conn, r *dualwrite.Router, p move.Phase, v any, key int64) {
	t.Helper()
	var err error
	switch v := v.(type) {
	case int64:
		err = dualwrite.WriteValue(ctx, q, r, p, v, key)
	case string:
		err = dualwrite.WriteValue(ctx, q, r, p, v, key)
	}
	if err != nil {
		t.Fatalf("WriteValue at %s: %v", p, err)
	}
}

func readTyped(t *testing.T, ctx context.Context, q dualwrite.Conn, r *dualwrite.Router, p move.Phase, key int64, want any) {
	t.Helper()
	var got any
	var err error
	switch want.(type) {
	case int64:
		got, err = dualwrite.ReadValue[int64](ctx, q, r, p, key)
	case string:
		got, err = dualwrite.ReadValue[string](ctx, q, r, p, key)
	}
	if err != nil || got != want {
		t.Fatalf("ReadValue at %s: %v, %v; want %v", p, got, err, want)
	}
}

// checkStored checks what old and new hold for the row with key after a
// write of value at phase p: the columns the phase writes hold the value
// (old in its old form), the ones it does not are untouched (NULL) unless
// triggers derive them, and Router.Read agrees.
func checkStored(t *testing.T, db *dialect.DB, r *dualwrite.Router, m move.Move, p move.Phase, key int64, value, old any, withTriggers bool) {
	t.Helper()
	ctx := context.Background()
	var gotOld, gotNew any
	if err := db.QueryRowxContext(ctx, db.Rebind(`SELECT `+m.Old+` FROM `+m.Table+` WHERE id = ?`), key).Scan(&gotOld); err != nil {
		t.Fatal(err)
	}
	newQ := `SELECT ` + m.New.Column + ` FROM ` + m.Table + ` WHERE id = ?`
	if m.CrossTable() {
		newQ = `SELECT ` + m.New.Column + ` FROM ` + m.New.Table + ` WHERE ` + m.New.Key[0] + ` = ?`
	}
	if err := db.QueryRowxContext(ctx, db.Rebind(newQ), key).Scan(&gotNew); err != nil && !errors.Is(err, sql.ErrNoRows) {
		t.Fatal(err)
	}
	wantOld, wantNew := any(nil), any(nil)
	if p.WritesOld() || withTriggers {
		wantOld = old
	}
	if p.WritesNew() || withTriggers {
		wantNew = value
	}
	if !dualwrite.SameValue(gotOld, wantOld) || !dualwrite.SameValue(gotNew, wantNew) {
		t.Fatalf("%s, row %d: old %v, new %v; want %v, %v", p, key, move.Normalize(gotOld), move.Normalize(gotNew), wantOld, wantNew)
	}
	got, err := r.Read(ctx, db, p, key)
	if err != nil || !dualwrite.SameValue(got, value) {
		t.Fatalf("%s: Router.Read of row %d: %v, %v; want %v", p, key, got, err, value)
	}
}
