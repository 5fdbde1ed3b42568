package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	migratedb "github.com/golang-migrate/migrate/v4/database"
	migratemysql "github.com/golang-migrate/migrate/v4/database/mysql"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite3"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/pressly/goose/v3"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

const toolPlan = `version: 1
moves:
  - name: price_trig
    table: products
    key: [id]
    old: price
    new: {column: price_cents, type: BIGINT}
    forward:
      sql: "CAST(ROUND({value} * 100) AS BIGINT)"
      dialects:
        mysql: "CAST(ROUND({value} * 100) AS SIGNED)"
        sqlite: "CAST(ROUND({value} * 100) AS INTEGER)"
    backward: {sql: "{value} / 100.0"}
    triggers: true
  - name: resource_props
    table: resource
    key: [id]
    old: properties
    new:
      table: resource_properties_data
      column: data
      key: [resource_id]
      type: {sql: TEXT, dialects: {mysql: LONGTEXT}}
      key_type: [BIGINT]
    triggers: true
`

// appTables creates the application's tables the moves start from.
func appTables(t *testing.T, db *dialect.DB) {
	t.Helper()
	db.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2))`)
	db.MustExec(`INSERT INTO products (id, price) VALUES (1, 1.50), (2, 2.25)`)
	db.MustExec(`CREATE TABLE resource (id BIGINT PRIMARY KEY, properties TEXT)`)
	db.MustExec(`INSERT INTO resource (id, properties) VALUES (1, '{"size": 1}')`)
}

// schemaOf is the application's schema, read on a connection of its own:
// a pooled PostgreSQL connection that ran SELECT * before a migration
// changed the table refuses to run its cached plan again.
func schemaOf(t *testing.T, dsn string) string {
	t.Helper()
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dbtest.Schema(t, db, notTheApp...)
}

// notTheApp are the tables that are not the application's: tandem's own
// and the tools' version tables.
var notTheApp = []string{"tandem_", "goose_db_version", "schema_migrations"}

// tool applies migration files from a directory, one migration at a time,
// the way an operator would with goose or golang-migrate.
type tool interface {
	up(t *testing.T)   // the next migration
	down(t *testing.T) // the last one applied
}

type gooseTool struct {
	p *goose.Provider
}

func newGoose(t *testing.T, engine dialect.Name, db *sql.DB, dir string) tool {
	t.Helper()
	d := map[dialect.Name]goose.Dialect{dialect.SQLite: goose.DialectSQLite3, dialect.Postgres: goose.DialectPostgres, dialect.MySQL: goose.DialectMySQL}[engine]
	p, err := goose.NewProvider(d, db, os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	return &gooseTool{p: p}
}

func (g *gooseTool) up(t *testing.T) {
	t.Helper()
	if _, err := g.p.UpByOne(context.Background()); err != nil {
		t.Fatalf("goose up: %v", err)
	}
}

func (g *gooseTool) down(t *testing.T) {
	t.Helper()
	if _, err := g.p.Down(context.Background()); err != nil {
		t.Fatalf("goose down: %v", err)
	}
}

type migrateTool struct {
	m *migrate.Migrate
}

// newMigrate runs golang-migrate with the drivers that take an open
// *sql.DB; the mysql one on the engine's ordinary DSN, without
// multiStatements (each migration holds one statement).
func newMigrate(t *testing.T, engine dialect.Name, db *sql.DB, dir string) tool {
	t.Helper()
	var (
		drv  migratedb.Driver
		name string
		err  error
	)
	switch engine {
	case dialect.SQLite:
		drv, err = migratesqlite.WithInstance(db, &migratesqlite.Config{})
		name = "sqlite3"
	case dialect.Postgres:
		drv, err = migratepgx.WithInstance(db, &migratepgx.Config{})
		name = "pgx5"
	case dialect.MySQL:
		drv, err = migratemysql.WithInstance(db, &migratemysql.Config{})
		name = "mysql"
	}
	if err != nil {
		t.Fatal(err)
	}
	src, err := iofs.New(os.DirFS(dir), ".")
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, name, drv)
	if err != nil {
		t.Fatal(err)
	}
	return &migrateTool{m: m}
}

func (g *migrateTool) up(t *testing.T) {
	t.Helper()
	if err := g.m.Steps(1); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
}

func (g *migrateTool) down(t *testing.T) {
	t.Helper()
	if err := g.m.Steps(-1); err != nil {
		t.Fatalf("migrate down: %v", err)
	}
}

// migrations counts the migrations in dir that are not yet in applied.
func migrations(t *testing.T, dir string, applied map[string]bool) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		v, _, _ := strings.Cut(e.Name(), "_")
		if !applied[v] && !strings.HasSuffix(e.Name(), ".down.sql") {
			applied[v] = true
			n++
		}
	}
	return n
}

// TestMigrationToolFiles: on every engine, for a same-table and a
// cross-table move with triggers, the files of `tandem moves sql --format
// goose` and `--format migrate` run with goose and golang-migrate (as
// libraries) in the order the runbook gives: the dry run shows the gate
// open, the tool applies the file, `tandem moves advance` records it (the
// steps found done). After each file the application's schema is the one
// `tandem moves advance` makes on a fresh database at that phase; the
// write-both Down, run after the move went back to legacy, gives back the
// legacy schema; the contract's gate stays closed until finalize.
func TestMigrationToolFiles(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(toolPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			open := func(t *testing.T) (string, *dialect.DB) {
				dsn := dbtest.DSN(t, e.Name)
				db, err := dialect.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = db.Close() })
				appTables(t, db)
				if _, errOut, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
					t.Fatalf("schema ensure: %s", errOut)
				}
				return dsn, db
			}
			moves := []string{"price_trig", "resource_props"}
			// What tandem makes at each phase, on a fresh database.
			refDSN, _ := open(t)
			want := map[string]string{"legacy": schemaOf(t, refDSN)}
			cli := func(t *testing.T, dsn string, wantCode int, args ...string) string {
				t.Helper()
				out, errOut, code := tandem(t, append([]string{"--db", dsn, "moves", "--plan", plan}, args...)...)
				if code != wantCode {
					t.Fatalf("tandem moves %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out, errOut)
				}
				return out
			}
			for _, step := range [][]string{
				{"advance", "--to", "write-both"}, {"backfill"}, {"verify"},
				{"advance", "--to", "read-new"}, {"advance", "--to", "write-new"},
				{"finalize", "--yes"}, {"advance", "--to", "contracted", "--yes"},
			} {
				for _, name := range moves {
					cli(t, refDSN, exitOK, append([]string{step[0], name}, step[1:]...)...)
				}
				if step[0] == "advance" && step[2] == "write-both" {
					want["write-both"] = schemaOf(t, refDSN)
				}
			}
			want["contracted"] = schemaOf(t, refDSN)

			for _, tc := range []struct {
				format string
				open   func(t *testing.T, engine dialect.Name, db *sql.DB, dir string) tool
			}{{"goose", newGoose}, {"migrate", newMigrate}} {
				t.Run(tc.format, func(t *testing.T) {
					dsn, db := open(t)
					dir := t.TempDir()
					applied := map[string]bool{}
					var tl tool
					apply := func(name, phase string) {
						t.Helper()
						out := cli(t, dsn, exitOK, "sql", name, "--phase", phase, "--dialect", string(e.Name), "--format", tc.format, "--out", dir)
						if !strings.HasPrefix(out, "Wrote ") {
							t.Fatalf("moves sql --out: %s", out)
						}
						// Both tools read the directory when they start.
						tl = tc.open(t, e.Name, db.DB(), dir)
						for range migrations(t, dir, applied) {
							tl.up(t)
						}
					}
					schemaIs := func(phase string) {
						t.Helper()
						if got := schemaOf(t, dsn); got != want[phase] {
							t.Fatalf("after the %s files: the schema differs from tandem's\n got:\n%s\nwant:\n%s", phase, got, want[phase])
						}
					}
					for _, name := range moves {
						cli(t, dsn, exitOK, "advance", name, "--to", "write-both", "--dry-run")
						apply(name, "write-both")
					}
					schemaIs("write-both")
					// Back to legacy with tandem, then the tool's Down.
					for i := len(moves) - 1; i >= 0; i-- {
						cli(t, dsn, exitOK, "advance", moves[i], "--to", "legacy")
					}
					if out, errOut, code := tandem(t, "--db", dsn, "wait", "--acked", "--move", moves[0], "--timeout", "1m"); code != exitOK {
						t.Fatalf("wait --acked: %d %s%s", code, out, errOut)
					}
					n := len(applied)
					for range n {
						tl.down(t)
					}
					schemaIs("legacy")
					for range n {
						tl.up(t)
					}
					schemaIs("write-both")
					for _, name := range moves {
						out := cli(t, dsn, exitOK, "advance", name, "--to", "write-both")
						if !strings.Contains(out, "(already done)") {
							t.Fatalf("advance after the tool applied write-both does not say its steps were found done:\n%s", out)
						}
					}
					for _, name := range moves {
						cli(t, dsn, exitOK, "backfill", name)
						cli(t, dsn, exitOK, "verify", name)
						cli(t, dsn, exitOK, "advance", name, "--to", "read-new")
						cli(t, dsn, exitOK, "advance", name, "--to", "write-new")
						// The contract file waits for the finalize gate.
						cli(t, dsn, exitAttention, "advance", name, "--to", "contracted", "--dry-run") // finalize must run first
						cli(t, dsn, exitOK, "finalize", name, "--yes")
						cli(t, dsn, exitOK, "advance", name, "--to", "contracted", "--dry-run")
						apply(name, "contracted")
						cli(t, dsn, exitOK, "advance", name, "--to", "contracted", "--yes")
					}
					schemaIs("contracted")
					if v := sortedKeys(applied); len(v) < 4 {
						t.Fatalf("applied %v, want at least two migrations per move", v)
					}
				})
			}
		})
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, _ := strconv.ParseUint(out[i], 10, 64)
		b, _ := strconv.ParseUint(out[j], 10, 64)
		return a < b
	})
	return out
}

// TestMovesSQLFormats: what `moves sql --format` prints and writes, and
// its bad input: each exits 2 with a message naming what to run, and
// writes nothing.
func TestMovesSQLFormats(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(toolPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "migrations")
	sqlArgs := func(args ...string) []string {
		return append([]string{"moves", "--plan", plan, "sql", "price_trig", "--dialect", "postgres"}, args...)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string // in stdout, or stderr for an error
	}{
		{"goose to stdout", sqlArgs("--phase", "write-both", "--format", "goose"), exitOK,
			[]string{"-- +goose Up\n", "-- +goose StatementBegin\n", "-- +goose Down\n", `DROP COLUMN "price_cents";`}},
		{"plain is today's output", sqlArgs("--phase", "write-both"), exitOK,
			[]string{"-- tandem move price_trig: entering write-both (postgres)\n", `ADD COLUMN "price_cents" BIGINT;`}},
		{"migrate into a directory", sqlArgs("--phase", "write-both", "--format", "migrate", "--out", dir, "--file-version", "0007"), exitOK,
			[]string{"Wrote " + filepath.Join(dir, "0007_tandem_price_trig_write_both.up.sql") + "\n", "0007_tandem_price_trig_write_both.down.sql"}},
		{"the next version", sqlArgs("--phase", "contracted", "--format", "migrate", "--out", dir), exitOK,
			[]string{"0008_tandem_price_trig_contracted.up.sql\n"}},
		{"a version taken", sqlArgs("--phase", "write-both", "--format", "goose", "--out", dir, "--file-version", "7"), exitBadInput,
			[]string{"version 7 is taken by 0007_tandem_price_trig_write_both"}},
		{"unknown format", sqlArgs("--phase", "write-both", "--format", "flyway"), exitBadInput,
			[]string{`format "flyway": want goose, migrate or plain`}},
		{"a phase with no SQL", sqlArgs("--phase", "read-new", "--format", "goose"), exitBadInput,
			[]string{"no file to write", "tandem moves sql price_trig --phase write-both --format goose"}},
		{"migrate needs a directory", sqlArgs("--phase", "write-both", "--format", "migrate"), exitBadInput,
			[]string{"--out migrations"}},
		{"a bad version", sqlArgs("--phase", "write-both", "--format", "goose", "--file-version", "v2"), exitBadInput,
			[]string{"must be 1 to 19 digits"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := tandem(t, tc.args...)
			got := out
			if code != exitOK {
				got = errOut
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, s := range tc.out {
				if !strings.Contains(got, s) {
					t.Errorf("no %q in\n%s", s, got)
				}
			}
		})
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 3 {
		t.Fatalf("the directory holds %v (%v), want the write-both pair and the contract's up file only", entries, err)
	}
}
