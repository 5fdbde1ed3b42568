package backup_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/backup"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// seed fills db with a table, rows of every kind of value and a view.
func seed(t *testing.T, db *dialect.DB) {
	t.Helper()
	db.MustExec(`CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(100), price DECIMAL(12,2), note TEXT)`)
	db.MustExec(`INSERT INTO items (id, name, price, note) VALUES (1, 'one', 1.50, NULL), (2, 'it''s two', 2.25, 'a
line break'), (3, 'drei €', 3.00, '')`)
	db.MustExec(`CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 2`)
}

// entries lists a directory's names.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// TestTakeRestores takes a backup on every engine and restores it the way
// an operator would (the SQLite file opened, the dump loaded into a fresh
// database by psql or mariadb): the restored database has the same tables,
// rows and triggers. The file is the user's only, and nothing else is left
// in its directory.
func TestTakeRestores(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		seed(t, db)
		want := dbtest.Dump(t, db)
		dir := t.TempDir()
		path := filepath.Join(dir, "before-contract.backup")
		plan, err := backup.Check(ctx, db, path)
		if err != nil {
			t.Fatal(err)
		}
		if got := entries(t, dir); len(got) != 0 {
			t.Fatalf("Check wrote %v", got)
		}
		res, err := backup.Take(ctx, db, path)
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan != plan || res.Path != path || res.TakenAt.IsZero() {
			t.Fatalf("result %+v, plan %+v", res, plan)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != res.Bytes || res.Bytes == 0 || st.Mode().Perm() != 0o600 {
			t.Fatalf("file %d bytes, mode %v; result says %d", st.Size(), st.Mode().Perm(), res.Bytes)
		}
		if got := entries(t, dir); len(got) != 1 {
			t.Fatalf("the directory holds %v, want the backup only", got)
		}
		restored := dbtest.Restore(t, db.Engine(), path)
		if got := dbtest.Dump(t, restored); got != want {
			t.Fatalf("restored database differs:\n--- restored\n%s\n--- original\n%s", got, want)
		}
		// A second backup under the same name is refused, and the first
		// is left as it was.
		before, _ := os.ReadFile(path)
		_, err = backup.Take(ctx, db, path)
		var ex *backup.ExistsError
		if !errors.As(err, &ex) || !errors.Is(err, backup.ErrExists) || ex.Path != path {
			t.Fatalf("backup over an existing file: %v", err)
		}
		if after, _ := os.ReadFile(path); string(after) != string(before) {
			t.Fatal("the refused backup changed the existing file")
		}
	})
}

// TestRefusals: what Take refuses before it starts, and what Check says
// the same way, writing nothing.
func TestRefusals(t *testing.T) {
	db := dbtest.Open(t, dialect.SQLite)
	dir := t.TempDir()
	existing := filepath.Join(dir, "there.db")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		want       error
	}{
		{"existing file", existing, backup.ErrExists},
		{"missing directory", filepath.Join(dir, "no", "such", "b.db"), backup.ErrBadPath},
		{"no name", " ", backup.ErrBadPath},
		{"a directory", dir, backup.ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []func() error{
				func() error { _, err := backup.Check(context.Background(), db, tc.path); return err },
				func() error { _, err := backup.Take(context.Background(), db, tc.path); return err },
			} {
				if err := f(); !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
			}
			if got := entries(t, dir); len(got) != 1 {
				t.Fatalf("the directory holds %v", got)
			}
		})
	}
}

func openDSN(t *testing.T, dsn string) *dialect.DB {
	t.Helper()
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fakeTool puts a program named name first on PATH (and only that: no
// other dump tool is found) that runs script with sh.
func fakeTool(t *testing.T, name, script string) {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
}

// serverWithPassword opens a fresh database of a server engine as a user
// with a password: on PostgreSQL the DSN carries one (a server that trusts
// local connections ignores it); on MariaDB a user is created with it and
// dropped at the end.
func serverWithPassword(t *testing.T, engine dialect.Name, password string) (*dialect.DB, string) {
	t.Helper()
	dsn := dbtest.DSN(t, engine)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	user := u.User.Username()
	if engine == dialect.MySQL {
		admin := openDSN(t, dsn)
		user = "tandem_bk_" + strings.TrimPrefix(u.Path, "/tandem_t_")
		admin.MustExec(`CREATE USER '` + user + `'@'%' IDENTIFIED BY '` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password) + `'`)
		t.Cleanup(func() { admin.MustExec(`DROP USER '` + user + `'@'%'`) })
		admin.MustExec(`GRANT ALL ON ` + strings.TrimPrefix(u.Path, "/") + `.* TO '` + user + `'@'%'`)
	}
	u.User = url.UserPassword(user, password)
	return openDSN(t, u.String()), password
}

// TestServerDumpTools runs each server engine's tool for real as a user
// with a password, and fake ones that fail or show what they were given:
// the password is in the environment or an option file, never on the
// command line, in the plan or in an error; a failed dump leaves nothing
// behind; a missing tool is refused with the command to run.
func TestServerDumpTools(t *testing.T) {
	const password = `pa"ss\w0rd 'x`
	for _, e := range dbtest.Engines[1:] {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			db, pw := serverWithPassword(t, e.Name, password)
			seed(t, db)
			dir := t.TempDir()

			t.Run("real", func(t *testing.T) {
				path := filepath.Join(dir, "real.sql")
				res, err := backup.Take(ctx, db, path)
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(res.Command, pw) || !strings.HasPrefix(res.Command, res.Tool+" ") {
					t.Fatalf("command %q", res.Command)
				}
				if got := dbtest.Dump(t, dbtest.Restore(t, e.Name, path)); got != dbtest.Dump(t, db) {
					t.Fatalf("restored database differs:\n%s", got)
				}
				os.Remove(path)
			})

			tool := map[dialect.Name]string{dialect.Postgres: "pg_dump", dialect.MySQL: "mariadb-dump"}[e.Name]
			t.Run("what the tool is given", func(t *testing.T) {
				log := filepath.Join(t.TempDir(), "log")
				// The fake writes its arguments, PGPASSWORD and the option
				// file it was named, then a dump, into the --file or
				// --result-file it was given.
				fakeTool(t, tool, `log=`+log+`
for a in "$@"; do
  printf 'arg %s\n' "$a" >> "$log"
  case "$a" in
    --defaults-extra-file=*) printf 'cnf %s\n' "$(/bin/cat "${a#--defaults-extra-file=}")" >> "$log" ;;
    --file=*|--result-file=*) out="${a#*=}" ;;
  esac
done
printf 'env %s\n' "$PGPASSWORD" >> "$log"
echo "-- dump" > "$out"
`)
				path := filepath.Join(dir, "fake.sql")
				res, err := backup.Take(ctx, db, path)
				if err != nil {
					t.Fatal(err)
				}
				defer os.Remove(path)
				b, _ := os.ReadFile(log)
				var args, rest []string
				for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					if a, ok := strings.CutPrefix(l, "arg "); ok {
						args = append(args, a)
					} else {
						rest = append(rest, l)
					}
				}
				if strings.Contains(strings.Join(args, " "), "w0rd") || strings.Contains(res.Command, "w0rd") {
					t.Fatalf("the password is on the command line: %q (shown %q)", args, res.Command)
				}
				switch e.Name {
				case dialect.Postgres:
					if rest[len(rest)-1] != "env "+pw || !strings.Contains(res.Command, "PGPASSWORD") {
						t.Fatalf("PGPASSWORD: %q, shown %q", rest, res.Command)
					}
				case dialect.MySQL:
					if !strings.HasPrefix(args[0], "--defaults-extra-file=") || !strings.Contains(strings.Join(rest, "\n"), `password="pa\"ss\\w0rd 'x"`) {
						t.Fatalf("option file: args %q, %q", args, rest)
					}
					if _, err := os.Stat(strings.TrimPrefix(args[0], "--defaults-extra-file=")); !errors.Is(err, os.ErrNotExist) {
						t.Fatalf("the option file is left behind: %v", err)
					}
					if !strings.Contains(res.Command, " --password ") {
						t.Fatalf("shown %q: no --password to ask for it", res.Command)
					}
				}
			})

			t.Run("a failed dump", func(t *testing.T) {
				// It says the password on stderr before it fails.
				pwFile := filepath.Join(t.TempDir(), "pw")
				if err := os.WriteFile(pwFile, []byte(pw), 0o600); err != nil {
					t.Fatal(err)
				}
				fakeTool(t, tool, `for a in "$@"; do case "$a" in --file=*|--result-file=*) out="${a#*=}" ;; esac; done
echo "half a dump" > "$out"
printf 'connection to server failed: password %s refused\n' "$(/bin/cat `+pwFile+`)" >&2
exit 3
`)
				path := filepath.Join(dir, "failed.sql")
				_, err := backup.Take(ctx, db, path)
				var de *backup.DumpError
				if !errors.As(err, &de) || !errors.Is(err, backup.ErrFailed) || strings.Contains(err.Error(), "w0rd") || !strings.Contains(err.Error(), "exit status 3") {
					t.Fatalf("failed dump: %v", err)
				}
				if got := entries(t, dir); len(got) != 0 {
					t.Fatalf("a failed dump left %v", got)
				}
			})

			t.Run("no tool", func(t *testing.T) {
				t.Setenv("PATH", t.TempDir())
				path := filepath.Join(dir, "none.sql")
				for _, f := range []func() error{
					func() error { _, err := backup.Check(ctx, db, path); return err },
					func() error { _, err := backup.Take(ctx, db, path); return err },
				} {
					err := f()
					var nt *backup.NoToolError
					if !errors.As(err, &nt) || !errors.Is(err, backup.ErrNoTool) || !strings.HasPrefix(nt.Command, tool+" ") ||
						!strings.Contains(nt.Command, path) || strings.Contains(err.Error(), "w0rd") {
						t.Fatalf("no tool: %v", err)
					}
				}
				if got := entries(t, dir); len(got) != 0 {
					t.Fatalf("left %v", got)
				}
			})
		})
	}
}
