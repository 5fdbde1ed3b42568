package dialect_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
)

func TestParseDSN(t *testing.T) {
	cases := []struct {
		in       string
		engine   dialect.Name
		redacted string
		wantErr  bool
	}{
		{in: "sqlite:///var/lib/app.db", engine: dialect.SQLite, redacted: "sqlite:///var/lib/app.db"},
		{in: "/var/lib/app.db", engine: dialect.SQLite, redacted: "sqlite:///var/lib/app.db"},
		{in: "postgres://u:s3cret@db:5432/app?sslmode=disable", engine: dialect.Postgres, redacted: "postgres://u:xxxxx@db:5432/app?sslmode=disable"},
		{in: "postgresql://u@db/app", engine: dialect.Postgres, redacted: "postgres://u@db/app"},
		{in: "mysql://root:pw@127.0.0.1:3306/test", engine: dialect.MySQL, redacted: "mysql://root:xxxxx@127.0.0.1:3306/test"},
		{in: "mysql://root@127.0.0.1/test", engine: dialect.MySQL, redacted: "mysql://root@127.0.0.1/test"},
		{in: "", wantErr: true},
		{in: "oracle://u:p@h/db", wantErr: true},
		{in: "postgres://u:p@/db", wantErr: true},
		{in: "postgres://u:p@host", wantErr: true},
		{in: "mysql://u:p@host/a/b", wantErr: true},
		{in: "mysql://u:p@host", wantErr: true},
		{in: "postgres:nohost", wantErr: true},
		{in: "sqlite://", wantErr: true},
		{in: "postgres://u:p%zz@h/db", wantErr: true},
		{in: "postgres://u@h:5432/db?password=S3CRETpw&sslmode=disable", engine: dialect.Postgres, redacted: "postgres://u@h:5432/db?password=xxxxx&sslmode=disable"},
		{in: "postgres://u:pa@ss word@127.0.0.1/x", wantErr: true},
		{in: "postgres://u:p@h/db\nDROP", wantErr: true},
		{in: "host=127.0.0.1 user=postgres password=s3cret dbname=x", wantErr: true},
		{in: "dbname=x PASSWORD = s3cret", wantErr: true},
		{in: "/tmp/price=1.db", engine: dialect.SQLite, redacted: "sqlite:///tmp/price=1.db"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			d, err := dialect.ParseDSN(tc.in)
			if tc.wantErr {
				if !errors.Is(err, dialect.ErrBadDSN) {
					t.Fatalf("ParseDSN(%q) = %v, want ErrBadDSN", tc.in, err)
				}
				for _, secret := range []string{":p@", "p%zz", "ss word", "pa@", "s3cret"} {
					if strings.Contains(err.Error(), secret) {
						t.Fatalf("error leaks the password: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Engine != tc.engine || d.Redacted() != tc.redacted {
				t.Fatalf("got %s %q, want %s %q", d.Engine, d.Redacted(), tc.engine, tc.redacted)
			}
			if strings.Contains(d.String(), "s3cret") || strings.Contains(d.String(), ":pw@") || strings.Contains(d.String(), "S3CRETpw") {
				t.Fatal("String() shows the password")
			}
		})
	}
}

func TestUnreachableDatabaseNeverShowsPassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://u:hunter2@127.0.0.1:1/db?sslmode=disable&connect_timeout=2",
		"postgres://u@127.0.0.1:1/db?password=hunter2&sslmode=disable&connect_timeout=2",
		"mysql://u:hunter2@127.0.0.1:1/db",
		"sqlite:///nonexistent-dir-for-tandem/sub/app.db",
	} {
		_, err := dialect.Open(context.Background(), dsn, dialect.WithTimeout(3*time.Second))
		if !errors.Is(err, dialect.ErrUnreachable) {
			t.Fatalf("Open(%s) = %v, want ErrUnreachable", dsn, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error shows the password: %v", err)
		}
	}
}

func FuzzParseDSN(f *testing.F) {
	for _, s := range []string{"sqlite:///a.db", "postgres://u:p@h:5432/db", "mysql://r@h/db", "/tmp/x.db", "mysql://u:p%@h/db", "::::", "postgres://[::1]:5/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := dialect.ParseDSN(s)
		if err != nil {
			if !errors.Is(err, dialect.ErrBadDSN) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if d.Engine == "" {
			t.Fatal("parsed DSN has no engine")
		}
		if u := d.Redacted(); strings.Contains(s, ":secretpw@") && strings.Contains(u, "secretpw") {
			t.Fatalf("redacted form shows the password: %s", u)
		}
	})
}
