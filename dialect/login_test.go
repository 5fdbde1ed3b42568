package dialect_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// A server that answers and refuses the login is not "unreachable":
// waiting does not help, the DSN must change.
func TestRefusedLoginIsNotUnreachable(t *testing.T) {
	for _, e := range dbtest.Engines {
		if e.EnvVar == "" {
			continue
		}
		t.Run(string(e.Name), func(t *testing.T) {
			base := os.Getenv(e.EnvVar)
			if base == "" {
				t.Skipf("%s: %s not set", dbtest.SkipMarker, e.EnvVar)
			}
			cases := map[string]func(u *url.URL){
				"unknown database": func(u *url.URL) { u.Path = "/tandem_no_such_database" },
				"unknown user":     func(u *url.URL) { u.User = url.User("tandem_no_such_user") },
			}
			if e.Name == dialect.MySQL { // the trust-auth PostgreSQL takes any password
				cases["wrong password"] = func(u *url.URL) { u.User = url.UserPassword(u.User.Username(), "hunter2-wrong") }
			}
			for name, change := range cases {
				t.Run(name, func(t *testing.T) {
					u, err := url.Parse(base)
					if err != nil {
						t.Fatal(err)
					}
					change(u)
					_, err = dialect.Open(context.Background(), u.String(), dialect.WithTimeout(10*time.Second))
					if !errors.Is(err, dialect.ErrLoginRefused) || errors.Is(err, dialect.ErrUnreachable) {
						t.Fatalf("Open = %v, want ErrLoginRefused and not ErrUnreachable", err)
					}
					if !strings.Contains(err.Error(), "refused the login") || strings.Contains(err.Error(), "hunter2") {
						t.Fatalf("message %q", err)
					}
				})
			}
		})
	}
}
