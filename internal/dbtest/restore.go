package dbtest

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
)

// Restore loads a backup of engine name (package backup's file) into a
// fresh database the way an operator would, and opens it: on SQLite the
// file is a database and is opened as it is (from a copy, so the backup
// stays as it was taken); on PostgreSQL psql runs the pg_dump script, on
// MySQL and MariaDB the mariadb (or mysql) client runs the dump, each into
// a database of its own (see DSN), dropped when the test ends.
func Restore(t testing.TB, name dialect.Name, file string) *dialect.DB {
	t.Helper()
	var dsn string
	switch name {
	case dialect.SQLite:
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("dbtest: read the backup: %v", err)
		}
		copyPath := filepath.Join(t.TempDir(), "restored.db")
		if err := os.WriteFile(copyPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		dsn = "sqlite://" + copyPath
	case dialect.Postgres:
		dsn = DSN(t, name)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u.Scheme = "postgres"
		runClient(t, file, "psql", "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "--dbname="+u.String(), "--file="+file)
	case dialect.MySQL:
		dsn = DSN(t, name)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"--host=" + u.Hostname(), "--port=" + u.Port(), "--user=" + u.User.Username()}
		if pw, ok := u.User.Password(); ok {
			args = append(args, "--password="+pw) // a test server's: never a real secret
		}
		client := "mariadb"
		if _, err := exec.LookPath(client); err != nil {
			client = "mysql"
		}
		runClient(t, file, client, append(args, strings.TrimPrefix(u.Path, "/"))...)
	default:
		t.Fatalf("dbtest: unknown engine %q", name)
	}
	db, err := dialect.Open(context.Background(), dsn, dialect.WithMustExist())
	if err != nil {
		t.Fatalf("dbtest: open the restored database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// runClient runs an engine's client with the dump on its stdin.
func runClient(t testing.TB, file, client string, args ...string) {
	t.Helper()
	in, err := os.Open(file)
	if err != nil {
		t.Fatalf("dbtest: open the backup: %v", err)
	}
	defer in.Close()
	cmd := exec.Command(client, args...)
	cmd.Stdin = in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dbtest: %s could not load the backup: %v\n%s", client, err, out)
	}
}
