package schema_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
)

func widgets(versions int) schema.Table {
	all := []schema.Migration{
		{Version: 1, Description: "create", Steps: []schema.Step{
			schema.CreateTable{Name: "tandem_widgets", PrimaryKey: []string{"id"}, Columns: []schema.Column{
				{Name: "id", Type: schema.Key}, {Name: "size", Type: schema.BigInt},
			}},
		}},
		{Version: 2, Description: "add colour and an index", Steps: []schema.Step{
			schema.AddColumn{Table: "tandem_widgets", Column: schema.Column{Name: "colour", Type: schema.Text, Null: true}},
			schema.AddColumn{Table: "tandem_widgets", Column: schema.Column{Name: "made_at", Type: schema.Timestamp, Null: true}},
			schema.CreateIndex{Table: "tandem_widgets", Name: "tandem_widgets_size", Columns: []string{"size"}},
		}},
	}
	return schema.Table{Name: "tandem_widgets", Migrations: all[:versions]}
}

func messages(rs []schema.Result) string {
	var b bytes.Buffer
	schema.Print(&b, rs, false)
	return b.String()
}

func TestEnsureCreatesThenMigrates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		rs, err := schema.Ensure(ctx, db, []schema.Table{widgets(1)})
		if err != nil {
			t.Fatal(err)
		}
		if got := messages(rs); got != "Migrated table 'tandem_widgets' from version 0 to 1\n" {
			t.Fatalf("first run: %q", got)
		}
		rs, _ = schema.Ensure(ctx, db, []schema.Table{widgets(1)})
		if got := messages(rs); got != "Table 'tandem_widgets' is up to date (version 1)\n" {
			t.Fatalf("second run: %q", got)
		}
		rs, err = schema.Ensure(ctx, db, []schema.Table{widgets(2)})
		if err != nil {
			t.Fatal(err)
		}
		if got := messages(rs); got != "Migrated table 'tandem_widgets' from version 1 to 2\n" || len(rs[0].SQL) != 3 {
			t.Fatalf("upgrade: %q, %d statements", got, len(rs[0].SQL))
		}
		v, err := schema.Versions(ctx, db)
		if err != nil || v["tandem_widgets"] != 2 {
			t.Fatalf("versions = %v, %v", v, err)
		}
		// An older build must not touch a table a newer one migrated.
		if _, err := schema.Ensure(ctx, db, []schema.Table{widgets(1)}); !errors.Is(err, schema.ErrTooNew) {
			t.Fatalf("older build: %v, want ErrTooNew", err)
		}
	})
}

func TestDryRunChangesNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		rs, err := schema.Ensure(ctx, db, []schema.Table{widgets(2)}, schema.WithDryRun())
		if err != nil {
			t.Fatal(err)
		}
		// The versions table first, then the widgets' four statements.
		if len(rs) != 2 || rs[0].Table != schema.VersionsTable || rs[1].To != 2 || len(rs[1].SQL) != 4 || !strings.HasPrefix(rs[1].SQL[0], "CREATE TABLE") {
			t.Fatalf("dry run = %+v", rs)
		}
		for _, tbl := range []string{"tandem_widgets", schema.VersionsTable} {
			if ok, _ := sqldialect.Of(db).TableExists(ctx, db, tbl); ok {
				t.Fatalf("dry run created %s", tbl)
			}
		}
	})
}

func TestConcurrentEnsureAppliesEachStepOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		var wg sync.WaitGroup
		results := make([][]schema.Result, 4)
		errs := make([]error, 4)
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = schema.Ensure(ctx, db, []schema.Table{widgets(2)})
			}()
		}
		wg.Wait()
		migrated := 0
		for i := range 4 {
			if errs[i] != nil {
				t.Fatalf("runner %d: %v", i, errs[i])
			}
			if results[i][0].From != results[i][0].To {
				migrated++
			}
		}
		if migrated != 1 {
			t.Fatalf("%d runners migrated, want exactly 1", migrated)
		}
	})
}

// A run killed half way through a migration (as MySQL's non-transactional
// DDL leaves it) is completed by the next run, never skipped.
func TestInterruptedMigrationIsHealed(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		if _, err := schema.Ensure(ctx, db, []schema.Table{widgets(1)}); err != nil {
			t.Fatal(err)
		}
		// Through Ensure's own crash hook: one step of migration 2 applied.
		_, err := schema.Ensure(ctx, db, []schema.Table{widgets(2)}, schema.StopAfter(1))
		if !errors.Is(err, schema.ErrInterrupted) {
			t.Fatalf("interrupted run: %v", err)
		}
		if !sqldialect.Of(db).TransactionalDDL() {
			// MySQL kept the half: the marker and the first column.
			var pending *int64
			if err := db.GetContext(ctx, &pending, `SELECT pending FROM tandem_schema_versions WHERE table_name = 'tandem_widgets'`); err != nil || pending == nil || *pending != 2 {
				t.Fatalf("pending marker = %v, %v", pending, err)
			}
		}
		// Whatever the engine kept, force the worst case: the first step
		// applied and the marker set, as if the process died right there.
		if ok, _ := (schema.AddColumn{Table: "tandem_widgets", Column: schema.Column{Name: "colour"}}).Done(ctx, db.Engine(), db); !ok {
			stmt, _ := (schema.AddColumn{Table: "tandem_widgets", Column: schema.Column{Name: "colour", Type: schema.Text, Null: true}}).SQL(db.Engine())
			if _, err := db.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ExecContext(ctx, `UPDATE tandem_schema_versions SET pending = 2 WHERE table_name = 'tandem_widgets'`); err != nil {
			t.Fatal(err)
		}
		// A dry run sees the interruption and lists only what is missing.
		rs, err := schema.Ensure(ctx, db, []schema.Table{widgets(2)}, schema.WithDryRun())
		if err != nil {
			t.Fatal(err)
		}
		if !rs[0].Healed || len(rs[0].SQL) != 2 || !strings.Contains(rs[0].String(), "Would complete the interrupted migration") {
			t.Fatalf("dry run of the heal = %+v (%s)", rs[0], rs[0])
		}
		rs, err = schema.Ensure(ctx, db, []schema.Table{widgets(2)})
		if err != nil {
			t.Fatal(err)
		}
		if !rs[0].Healed || rs[0].To != 2 || len(rs[0].SQL) != 2 {
			t.Fatalf("heal run = %+v (want healed, version 2, the 2 missing steps)", rs[0])
		}
		if !strings.Contains(rs[0].String(), "interrupted") {
			t.Fatalf("message does not say it healed: %s", rs[0])
		}
		ok, err := sqldialect.Of(db).IndexExists(ctx, db, "tandem_widgets", "tandem_widgets_size")
		if err != nil || !ok {
			t.Fatalf("index missing after heal: %v", err)
		}
		rs, _ = schema.Ensure(ctx, db, []schema.Table{widgets(2)})
		if rs[0].Healed || rs[0].From != 2 {
			t.Fatalf("after heal: %+v", rs[0])
		}
	})
}

func TestInvalidTablesAreRefused(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	for _, tbl := range []schema.Table{
		{Name: "bad;name"},
		{Name: "ok", Migrations: []schema.Migration{{Version: 2}}},
	} {
		if _, err := schema.Ensure(context.Background(), db, []schema.Table{tbl}); err == nil {
			t.Fatalf("Ensure(%+v) accepted", tbl)
		}
	}
	if ok, _ := sqldialect.Of(db).TableExists(context.Background(), db, schema.VersionsTable); ok {
		t.Fatal("a refused Ensure wrote the versions table")
	}
}
