package dualwrite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// statementMoves are the kinds of move a Statement must keep right: Go
// transforms, SQL transforms (a Backward binding its value in an
// expression) and a cross-table move, with a value in the new form.
func statementMoves() []struct {
	m     move.Move
	value any
} {
	sqlOnly := priceMove()
	sqlOnly.Forward.Go, sqlOnly.Backward.Go = nil, nil
	return []struct {
		m     move.Move
		value any
	}{{priceMove(), int64(1250)}, {sqlOnly, int64(1250)}, {propsMove(), "v"}}
}

// kept are one move's statements as an application keeps them, and the
// same statements built per call from the fragments, which they must equal.
type kept struct {
	r                   *dualwrite.Router
	read, update, ins   *dualwrite.Statement
	src                 string
	builtRead, builtUpd func(p move.Phase, value any, name string, id int64) (string, []any, error)
	builtIns            func(p move.Phase, value any, name string, id int64) (string, []any, error)
}

func keepStatements(t testing.TB, r *dualwrite.Router, d sqldialect.Dialect, table string) kept {
	t.Helper()
	src := sqldialect.MustQuote(d, table)
	k := kept{r: r, src: src}
	k.read = r.Statement(func(f *dualwrite.Fragments) (string, error) {
		sel, err := f.Select("s")
		return `SELECT s.name, ` + sel.Expr + ` FROM ` + src + ` s` + sel.Join + ` WHERE s.id = ` + f.Arg() + ` AND s.name <> ` + f.Arg(), err
	})
	k.update = r.Statement(func(f *dualwrite.Fragments) (string, error) {
		stmt := `UPDATE ` + src + ` SET name = ` + f.Arg()
		if !f.Empty() {
			stmt += `, ` + f.Clauses()
		}
		return stmt + ` WHERE id = ` + f.Arg(), nil
	})
	k.ins = r.Statement(func(f *dualwrite.Fragments) (string, error) {
		return `INSERT INTO ` + src + ` (id, name` + f.Columns() + `) VALUES (` + f.Arg() + `, ` + f.Arg() + f.Values() + `)`, nil
	})
	k.builtRead = func(p move.Phase, _ any, name string, id int64) (string, []any, error) {
		sel, err := r.Select(p, "s")
		if err != nil {
			return "", nil, err
		}
		a := r.Args()
		return `SELECT s.name, ` + sel.Expr + ` FROM ` + src + ` s` + sel.Join + ` WHERE s.id = ` + a.Bind(id) + ` AND s.name <> ` + a.Bind(name), a.Values(), nil
	}
	k.builtUpd = func(p move.Phase, value any, name string, id int64) (string, []any, error) {
		set, err := r.Set(p, value)
		if err != nil {
			return "", nil, err
		}
		a := r.Args()
		stmt := `UPDATE ` + src + ` SET name = ` + a.Bind(name)
		if !set.Empty() {
			stmt += `, ` + set.Clauses(a)
		}
		return stmt + ` WHERE id = ` + a.Bind(id), a.Values(), nil
	}
	k.builtIns = func(p move.Phase, value any, name string, id int64) (string, []any, error) {
		ins, err := r.Insert(p, value)
		if err != nil {
			return "", nil, err
		}
		a := r.Args()
		return `INSERT INTO ` + src + ` (id, name` + ins.Columns() + `) VALUES (` + a.Bind(id) + `, ` + a.Bind(name) + ins.Values(a) + `)`, a.Values(), nil
	}
	return k
}

// check compares the kept statements at p with the ones built per call.
func (k kept) check(p move.Phase, value any, name string, id int64) error {
	q, err := k.read.Query(p, id, name)
	if err != nil {
		return err
	}
	want, wantArgs, err := k.builtRead(p, value, name, id)
	if err != nil {
		return err
	}
	if q.SQL != want || !reflect.DeepEqual(q.Args, wantArgs) {
		return fmt.Errorf("%s: read: kept %s %v; built %s %v", p, q.SQL, q.Args, want, wantArgs)
	}
	sel, _ := k.r.Select(p, "s")
	if q.Select.Expr != sel.Expr || q.Select.Join != sel.Join {
		return fmt.Errorf("%s: the Query's Select %+v; Router.Select %+v", p, q.Select, sel)
	}
	for _, c := range []struct {
		op    string
		s     *dualwrite.Statement
		built func(move.Phase, any, string, int64) (string, []any, error)
		own   []any
	}{{"update", k.update, k.builtUpd, []any{name, id}}, {"insert", k.ins, k.builtIns, []any{id, name}}} {
		w, err := c.s.Exec(p, value, c.own...)
		if err != nil {
			return err
		}
		want, wantArgs, err := c.built(p, value, name, id)
		if err != nil {
			return err
		}
		if w.SQL != want || !reflect.DeepEqual(w.Args, wantArgs) {
			return fmt.Errorf("%s: %s: kept %s %v; built %s %v", p, c.op, w.SQL, w.Args, want, wantArgs)
		}
		set, _ := k.r.Set(p, value)
		if w.Needed() != set.Needed() {
			return fmt.Errorf("%s: %s: Needed %v, Set's %v", p, c.op, w.Needed(), set.Needed())
		}
	}
	return nil
}

// TestStatementIsTheBuiltStatement checks, per engine and kind of move,
// that a kept Statement gives at every phase the text and arguments of the
// same statement built per call from Select, Set, Insert and Args, visiting
// the phases forwards, backwards and at random on the same Statements, so
// that each call follows a phase change.
func TestStatementIsTheBuiltStatement(t *testing.T) {
	for _, mc := range statementMoves() {
		for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
			t.Run(mc.m.Name+"/"+string(name), func(t *testing.T) {
				d, _ := sqldialect.For(name)
				r, err := dualwrite.NewRouter(mc.m, name)
				if err != nil {
					t.Fatal(err)
				}
				k := keepStatements(t, r, d, mc.m.Table)
				phases := move.Phases()
				var order []move.Phase
				order = append(order, phases...)
				for i := len(phases) - 1; i >= 0; i-- {
					order = append(order, phases[i])
				}
				rng := rand.New(rand.NewPCG(1, 2))
				for range 20 {
					order = append(order, phases[rng.IntN(len(phases))])
				}
				for i, p := range order {
					if err := k.check(p, mc.value, fmt.Sprintf("n%d", i), int64(i)); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}
}

// TestStatementConcurrent uses one set of Statements from many goroutines
// at phases that change between calls (run with -race): every call gets
// the statement of its own phase.
func TestStatementConcurrent(t *testing.T) {
	for _, mc := range statementMoves() {
		d, _ := sqldialect.For(dialect.Postgres) // numbered placeholders: a wrong position shows
		r, err := dualwrite.NewRouter(mc.m, d.Name())
		if err != nil {
			t.Fatal(err)
		}
		k := keepStatements(t, r, d, mc.m.Table)
		phases := move.Phases()
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(g), 7))
				for i := range 200 {
					if err := k.check(phases[rng.IntN(len(phases))], mc.value, "n", int64(i)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", mc.m.Name, err)
		}
	}
}

// TestStatementRefuses covers what a Statement refuses: an invalid phase,
// the wrong number of own arguments, Query of a statement that writes, a
// failing build (reported, not kept: the next call builds again) and a Go
// Backward transform's error.
func TestStatementRefuses(t *testing.T) {
	m := priceMove()
	m.Backward.Go = func(v any) (any, error) { return nil, errors.New("no") }
	r, err := dualwrite.NewRouter(m, dialect.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	put := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		return `UPDATE products SET ` + f.Clauses() + ` WHERE id = ` + f.Arg(), nil
	})
	builds := 0
	flaky := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		builds++
		if builds == 1 {
			return "", errors.New("first build fails")
		}
		return `SELECT 1 WHERE ` + f.Arg() + ` = 1`, nil
	})
	var phaseErr *move.PhaseError
	var transformErr *move.TransformError
	if _, err := put.Exec(move.Phase(99), int64(1), 1); !errors.As(err, &phaseErr) {
		t.Errorf("invalid phase: %v", err)
	}
	if _, err := put.Exec(move.WriteNew, int64(1)); err == nil {
		t.Error("Exec without the statement's argument: no error")
	}
	if _, err := put.Query(move.WriteNew, 1); err == nil {
		t.Error("Query of a statement that writes: no error")
	}
	if _, err := put.Exec(move.WriteBoth, int64(1), 1); !errors.As(err, &transformErr) {
		t.Errorf("a failing Backward: %v", err)
	}
	if w, err := put.Exec(move.WriteNew, int64(1), 1); err != nil || len(w.Args) != 2 {
		t.Errorf("write-new (no Backward): %+v, %v", w, err)
	}
	if _, err := flaky.Query(move.Legacy, 1); err == nil {
		t.Error("a failing build: no error")
	}
	if q, err := flaky.Query(move.Legacy, 1); err != nil || q.SQL != `SELECT 1 WHERE ? = 1` {
		t.Errorf("after a failing build: %+v, %v", q, err)
	}
	if _, err := flaky.Query(move.Legacy, 1); err != nil || builds != 2 {
		t.Errorf("the kept text: %d builds, %v", builds, err)
	}
}

// TestStatementRoutes runs kept Statements against every engine at every
// phase of each kind of move, in one pass forwards and one backwards on
// the same Statements: a new row (with Finish in its transaction), an
// UPDATE of the application's own column and the moved value, and a
// SELECT read through Into; what lands in old and new follows the phase.
func TestStatementRoutes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		for _, fc := range fragmentCases() {
			t.Run(fc.name, func(t *testing.T) {
				ctx := context.Background()
				m := fc.m()
				d := sqldialect.Of(db)
				for _, s := range fc.create {
					mustExec(t, db, s)
				}
				t.Cleanup(func() {
					if m.CrossTable() {
						mustExec(t, db, `DROP TABLE `+sqldialect.MustQuote(d, m.New.Table))
					}
					mustExec(t, db, `DROP TABLE `+sqldialect.MustQuote(d, m.Table))
				})
				r, err := dualwrite.NewRouter(m, d.Name())
				if err != nil {
					t.Fatal(err)
				}
				k := keepStatements(t, r, d, m.Table)
				phases := move.Phases()
				var order []move.Phase
				order = append(order, phases...)
				for i := len(phases) - 1; i >= 0; i-- {
					order = append(order, phases[i])
				}
				for i, p := range order {
					key := int64(i + 1)
					tx, err := db.BeginTxx(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					ins, err := k.ins.Exec(p, fc.value(key), key, "n")
					if err != nil {
						t.Fatal(err)
					}
					if _, err := tx.ExecContext(ctx, ins.SQL, ins.Args...); err != nil {
						t.Fatalf("%s: %s: %v", p, ins.SQL, err)
					}
					if err := ins.Finish(ctx, tx, key); err != nil {
						t.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
					checkStored(t, db, r, m, p, key, fc.value(key), fc.old(key), false)

					// The update writes the value of another key, so it shows.
					v, old := fc.value(key+100), fc.old(key+100)
					tx, err = db.BeginTxx(ctx, nil)
					if err != nil {
						t.Fatal(err)
					}
					upd, err := k.update.Exec(p, v, "renamed", key)
					if err != nil {
						t.Fatal(err)
					}
					if _, err := tx.ExecContext(ctx, upd.SQL, upd.Args...); err != nil {
						t.Fatalf("%s: %s: %v", p, upd.SQL, err)
					}
					if err := upd.Finish(ctx, tx, key); err != nil {
						t.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						t.Fatal(err)
					}
					checkStored(t, db, r, m, p, key, v, old, false)

					q, err := k.read.Query(p, key, "x")
					if err != nil {
						t.Fatal(err)
					}
					var name string
					var got sql.Null[string]
					if err := db.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&name, dualwrite.Into(q.Select, &got)); err != nil {
						t.Fatalf("%s: %s: %v", p, q.SQL, err)
					}
					if name != "renamed" || !got.Valid || got.V != fmt.Sprint(v) {
						t.Fatalf("%s: %s: read %q, %v; want renamed, %v", p, q.SQL, name, got, v)
					}
				}
			})
		}
	})
}

// TestIntoAsIs covers Into's scanner where the phase reads the column as
// it is (no Go Forward) and where it applies one, into the kinds of
// destination an application scans into: the driver's own type, a
// conversion database/sql would make, NULL into each kind, and a Select
// the application made itself.
func TestIntoAsIs(t *testing.T) {
	r, err := dualwrite.NewRouter(priceMove(), dialect.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	asIs, _ := r.Select(move.ReadNew, "")
	goForward, _ := r.Select(move.WriteBoth, "") // old, through the Go Forward
	for _, tc := range []struct {
		name string
		sel  dualwrite.Select
		src  any
		want any
		err  error
		into func() (func(dualwrite.Select) sql.Scanner, func() any)
	}{
		{name: "int64 as is", sel: asIs, src: int64(7), want: int64(7), into: intoOf[int64]},
		{name: "int from int64", sel: asIs, src: int64(7), want: 7, into: intoOf[int]},
		{name: "string from bytes", sel: asIs, src: []byte("ab"), want: "ab", into: intoOf[string]},
		{name: "int64 from a string of digits", sel: asIs, src: "12", want: int64(12), into: intoOf[int64]},
		{name: "NULL into int64", sel: asIs, src: nil, err: dualwrite.ErrNull, into: intoOf[int64]},
		{name: "NULL into a pointer", sel: asIs, src: nil, want: (*int64)(nil), into: intoOf[*int64]},
		{name: "NULL into sql.Null", sel: asIs, src: nil, want: sql.Null[int64]{}, into: intoOf[sql.Null[int64]]},
		{name: "int64 into sql.Null", sel: asIs, src: int64(3), want: sql.Null[int64]{V: 3, Valid: true}, into: intoOf[sql.Null[int64]]},
		{name: "Go Forward", sel: goForward, src: 12.5, want: int64(1250), into: intoOf[int64]},
		{name: "Go Forward, NULL into int64", sel: goForward, src: nil, err: dualwrite.ErrNull, into: intoOf[int64]},
		{name: "a Select of the application's", sel: dualwrite.Select{Expr: "x"}, src: int64(5), want: int64(5), into: intoOf[int64]},
		{name: "a Select of the application's, NULL", sel: dualwrite.Select{Expr: "x"}, src: nil, err: dualwrite.ErrNull, into: intoOf[int64]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk, got := tc.into()
			err := mk(tc.sel).Scan(tc.src)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v; want %v", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got(), tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got(), err, tc.want)
			}
		})
	}
}

// A driver may reuse the buffer it passes to Scan for the next row: what
// Into stores must be the caller's own copy, as database/sql's Scan makes.
func TestIntoCopiesBytes(t *testing.T) {
	r, err := dualwrite.NewRouter(priceMove(), dialect.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	asIs, _ := r.Select(move.ReadNew, "")
	for _, tc := range []struct {
		name string
		sel  dualwrite.Select
		into func() (func(dualwrite.Select) sql.Scanner, func() any)
	}{
		{"bytes as is", asIs, intoOf[[]byte]},
		{"bytes into any", asIs, intoOf[any]},
		{"a Select of the application's", dualwrite.Select{Expr: "x"}, intoOf[[]byte]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := []byte("first")
			mk, got := tc.into()
			if err := mk(tc.sel).Scan(buf); err != nil {
				t.Fatal(err)
			}
			copy(buf, "XXXXX") // the driver reads the next row into it
			var b []byte
			switch v := got().(type) {
			case []byte:
				b = v
			default:
				t.Fatalf("stored %T", v)
			}
			if string(b) != "first" {
				t.Fatalf("stored %q: it shares the driver's buffer", b)
			}
		})
	}
}

// intoOf returns a maker of Into's scanner into a fresh T, and a reader of it.
func intoOf[T any]() (func(dualwrite.Select) sql.Scanner, func() any) {
	var v T
	return func(s dualwrite.Select) sql.Scanner { return dualwrite.Into(s, &v) }, func() any { return v }
}
