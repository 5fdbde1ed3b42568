package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// finalizedMove walks testPlan's move to write-new and finalizes it, with
// rows in products: what stands before a contract.
func finalizedMove(t *testing.T, engine dialect.Name) (mv func(code int, args ...string) string, dsn string, db *dialect.DB) {
	t.Helper()
	mv, dsn, db = walkedTo(t, engine)
	mv(exitOK, "moves", "finalize", "price_cents", "--yes")
	return mv, dsn, db
}

// walkedTo walks testPlan's move, with rows in products, to write-new.
func walkedTo(t *testing.T, engine dialect.Name) (mv func(code int, args ...string) string, dsn string, db *dialect.DB) {
	t.Helper()
	dsn, plan, db := productsFixture(t, engine)
	db.MustExec(`INSERT INTO products (id, price) VALUES (1, 1.50), (2, 2.25), (3, 3.00)`)
	mv = func(code int, args ...string) string {
		t.Helper()
		out, errOut, got := tandem(t, append([]string{"--db", dsn, "--plan", plan}, args...)...)
		if got != code {
			t.Fatalf("tandem %s: exit %d, want %d\n%s%s", strings.Join(args, " "), got, code, out, errOut)
		}
		return out + errOut
	}
	mv(exitOK, "schema", "ensure")
	for _, step := range [][]string{{"advance"}, {"backfill"}, {"verify"}, {"advance"}, {"advance"}} {
		mv(exitOK, append([]string{"moves", step[0], "price_cents"}, step[1:]...)...)
	}
	return mv, dsn, db
}

// TestContractBackup: on every engine, a contract where no terminal can
// confirm it is refused without --yes and changes nothing, with or without
// --backup; a dry run copies nothing; a dump tool that is missing or fails
// stops the contract before it runs, leaving no file; and --yes --backup
// takes a copy that restores to the database as it was before the
// contract, recorded in the ledger and shown by status.
func TestContractBackup(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			mv, _, db := finalizedMove(t, e.Name)
			dir := t.TempDir()
			file := filepath.Join(dir, "products-before-contract")
			before := dbtest.Dump(t, db)
			unchanged := func(what string) {
				t.Helper()
				if got := dbtest.Dump(t, db); got != before {
					t.Fatalf("%s changed the database:\n%s", what, got)
				}
				if es, _ := os.ReadDir(dir); len(es) != 0 {
					t.Fatalf("%s left %v in the backup directory", what, es)
				}
			}

			for _, tc := range []struct {
				name string
				args []string
				code int
				want []string
			}{
				{"no --yes", []string{"moves", "advance", "price_cents"}, exitBadInput,
					[]string{"cannot be undone", "tandem moves advance price_cents --yes ", "tandem moves advance price_cents --yes --backup price_cents-before-contract.backup"}},
				{"--to contracted, no --yes", []string{"moves", "advance", "price_cents", "--to", "contracted"}, exitBadInput,
					[]string{"tandem moves advance price_cents --to contracted --yes "}},
				{"--backup, no --yes", []string{"moves", "advance", "price_cents", "--backup", file}, exitBadInput,
					[]string{"tandem moves advance price_cents --backup " + file + " --yes"}},
				{"dry run", []string{"moves", "advance", "price_cents", "--dry-run", "--backup", file}, exitOK,
					[]string{"Would advance move price_cents from write-new to contracted", "would first take a backup into " + file, "cannot be undone"}},
			} {
				out := mv(tc.code, tc.args...)
				for _, w := range tc.want {
					if !strings.Contains(out, w) {
						t.Fatalf("%s: %q lacks %q", tc.name, out, w)
					}
				}
				unchanged(tc.name)
			}

			// A name too long for the temporary file next to it: the copy
			// fails on every engine before it starts.
			long := filepath.Join(dir, strings.Repeat("b", 240))
			if out := mv(exitFailed, "moves", "advance", "price_cents", "--yes", "--backup", long); !strings.Contains(out, "the step did not run") {
				t.Fatalf("failed backup: %s", out)
			}
			unchanged("a failed backup")
			if e.Name != dialect.SQLite {
				tool := map[dialect.Name]string{dialect.Postgres: "pg_dump", dialect.MySQL: "mariadb-dump"}[e.Name]
				real := os.Getenv("PATH")
				t.Setenv("PATH", t.TempDir())
				out := mv(exitBadInput, "moves", "advance", "price_cents", "--yes", "--backup", file)
				if !strings.Contains(out, "take the copy by hand: "+tool+" ") || !strings.Contains(out, file) {
					t.Fatalf("no dump tool: %s", out)
				}
				unchanged("a missing dump tool")
				// A tool that writes half a dump and fails.
				bin := t.TempDir()
				script := "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --file=*|--result-file=*) out=\"${a#*=}\" ;; esac; done\necho half > \"$out\"\necho 'out of disk' >&2\nexit 1\n"
				if err := os.WriteFile(filepath.Join(bin, tool), []byte(script), 0o755); err != nil {
					t.Fatal(err)
				}
				t.Setenv("PATH", bin)
				if out := mv(exitFailed, "moves", "advance", "price_cents", "--yes", "--backup", file); !strings.Contains(out, "out of disk") {
					t.Fatalf("failing dump tool: %s", out)
				}
				unchanged("a failing dump tool")
				t.Setenv("PATH", real)
			}

			out := mv(exitOK, "moves", "advance", "price_cents", "--yes", "--backup", file)
			if !strings.Contains(out, "Backup of the database taken into "+file) || !strings.Contains(out, "Advanced move price_cents from write-new to contracted") {
				t.Fatalf("contract with a backup: %s", out)
			}
			if got := dbtest.Dump(t, dbtest.Restore(t, e.Name, file)); got != before {
				t.Fatalf("the backup restores to another database:\n--- restored\n%s\n--- before the contract\n%s", got, before)
			}
			if out := mv(exitOK, "status"); !strings.Contains(out, "backup 1 before contracted: "+file) {
				t.Fatalf("status does not show the backup: %s", out)
			}
			var doc struct {
				Moves []struct {
					Phase   string `json:"phase"`
					Backups []struct {
						Seq   int64  `json:"seq"`
						Path  string `json:"path"`
						Bytes int64  `json:"bytes"`
						Tool  string `json:"tool"`
					} `json:"backups"`
				} `json:"moves"`
			}
			st, _ := os.Stat(file)
			if err := json.Unmarshal([]byte(mv(exitOK, "--json", "moves", "list")), &doc); err != nil || len(doc.Moves) != 1 || doc.Moves[0].Phase != "contracted" ||
				len(doc.Moves[0].Backups) != 1 || doc.Moves[0].Backups[0].Path != file || doc.Moves[0].Backups[0].Bytes != st.Size() {
				t.Fatalf("moves list: %+v %v", doc, err)
			}
			// Run again, it is a no-op: nothing to confirm, nothing copied.
			if out := mv(exitOK, "moves", "advance", "price_cents", "--to", "contracted", "--backup", file+".again"); !strings.Contains(out, "already at contracted") {
				t.Fatalf("again: %s", out)
			}
			if _, err := os.Stat(file + ".again"); !os.IsNotExist(err) {
				t.Fatalf("a no-op took a backup: %v", err)
			}
		})
	}
}
