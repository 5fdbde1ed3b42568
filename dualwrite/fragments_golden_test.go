package dualwrite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// TestFragmentsGolden pins the fragments of every phase per engine: the
// select expression and join, the SET clauses and the insert columns and
// values after one placeholder of the application's, and whether Finish
// writes the new table. Run go test -update to rewrite them.
func TestFragmentsGolden(t *testing.T) {
	sqlOnly := priceMove()
	sqlOnly.Name = "price_cents_sql"
	sqlOnly.Forward.Go, sqlOnly.Backward.Go = nil, nil
	for _, m := range []move.Move{priceMove(), sqlOnly, propsMove()} {
		for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
			d, _ := sqldialect.For(name)
			r, err := dualwrite.NewRouter(m, d.Name())
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			value := any(int64(1250))
			if m.CrossTable() {
				value = "v"
			}
			for _, p := range move.Phases() {
				sel, err := r.Select(p, "s")
				if err != nil {
					t.Fatal(err)
				}
				set, err := r.Set(p, value)
				if err != nil {
					t.Fatal(err)
				}
				ins, err := r.Insert(p, value)
				if err != nil {
					t.Fatal(err)
				}
				a := r.Args("own")
				clauses := set.Clauses(a)
				nset := len(a.Values()) - 1
				a = r.Args("own")
				fmt.Fprintf(&b, "%s\n  select: %s\n  join:   %s\n  set:    %s (args %d)\n  insert: (id%s) VALUES (%s%s)\n  finish: %v\n",
					p, sel.Expr, sel.Join, clauses, nset, ins.Columns(), sqldialect.Placeholder(d, 1), ins.Values(a), set.Needed())
			}
			golden := filepath.Join("testdata", "fragments."+m.Name+"."+string(name)+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if string(want) != b.String() {
				t.Errorf("%s differs:\n%s", golden, b.String())
			}
		}
	}
}

// Bad input to the fragment path gets a typed error naming what to fix.
func TestFragmentsRefuse(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dialect.SQLite)
	mustExec(t, db, `CREATE TABLE resource (id BIGINT PRIMARY KEY, properties TEXT)`)
	mustExec(t, db, `CREATE TABLE resource_properties_data (resource_id BIGINT PRIMARY KEY, data TEXT)`)
	mustExec(t, db, `INSERT INTO resource (id) VALUES (1)`)
	r, err := dualwrite.NewRouter(propsMove(), db.Engine())
	if err != nil {
		t.Fatal(err)
	}
	bad := move.Phase(42)
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"select at a phase that is none", func() error { _, err := r.Select(bad, ""); return err }(), move.ErrBadPhase},
		{"select from an alias that is not a name", func() error { _, err := r.Select(move.ReadNew, "s; DROP"); return err }(), dialect.ErrBadIdentifier},
		{"set at a phase that is none", func() error { _, err := r.Set(bad, "v"); return err }(), move.ErrBadPhase},
		{"insert at a phase that is none", func() error { _, err := r.Insert(bad, "v"); return err }(), move.ErrBadPhase},
		{"read with two keys for one", func() error { _, err := dualwrite.ReadValue[string](ctx, db, r, move.ReadNew, 1, 2); return err }(), nil},
		{"NULL into a string", func() error { _, err := dualwrite.ReadValue[string](ctx, db, r, move.ReadNew, 1); return err }(), dualwrite.ErrNull},
		{"finish without the key", func() error {
			ins, _ := r.Insert(move.WriteNew, "v")
			return ins.Finish(ctx, db, 1, 2)
		}(), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.err == nil || (tt.want != nil && !errors.Is(tt.err, tt.want)) {
				t.Fatalf("got %v, want %v", tt.err, tt.want)
			}
		})
	}
	// NULL where the type can hold it.
	v, err := dualwrite.ReadValue[sql.Null[string]](ctx, db, r, move.ReadNew, 1)
	if err != nil || v.Valid {
		t.Fatalf("NULL into sql.Null: %v %v", v, err)
	}
	p, err := dualwrite.ReadValue[*string](ctx, db, r, move.ReadNew, 1)
	if err != nil || p != nil {
		t.Fatalf("NULL into *string: %v %v", p, err)
	}
}
