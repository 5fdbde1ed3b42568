package dialect_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
)

// dsnForms builds a DSN around a password in the ways people write them:
// valid, with a typo in the scheme, without a scheme, in the query, or with
// the password's special characters left unencoded.
var dsnForms = []func(user, pw, host string) string{
	func(u, p, h string) string { return "postgres://" + u + ":" + p + "@" + h + "/db?sslmode=disable" },
	func(u, p, h string) string { return "mysql://" + u + ":" + p + "@" + h + "/db" },
	func(u, p, h string) string { return "postgres//" + u + ":" + p + "@" + h + "/db" },
	func(u, p, h string) string { return u + ":" + p + "@" + h + "/db" },
	func(u, p, h string) string { return "postgres://" + u + "@" + h + "/db?password=" + p },
	func(u, p, h string) string { return "oracle://" + u + ":" + p + "@" + h + "/db" },
	func(u, p, h string) string { return "postgres://" + u + ":" + p + "@" + h },
	func(u, p, h string) string { return "mysql:/" + u + ":" + p + "@" + h + "/db" },
	func(u, p, h string) string { return h + "/db?password=" + p },
	func(u, p, h string) string { return "nats://" + u + ":" + p + "@" + h },
	func(u, p, h string) string { return "nats://" + p + "@" + h },
}

// shown is everything ParseDSN, RedactDSN and RedactURL let out of raw.
func shown(raw string) string {
	var b strings.Builder
	b.WriteString(dialect.RedactDSN(raw) + "\n" + dialect.RedactURL(raw) + "\n")
	if d, err := dialect.ParseDSN(raw); err != nil {
		b.WriteString(err.Error() + "\n")
	} else {
		b.WriteString(d.Redacted() + "\n" + d.String() + "\n")
	}
	if _, err := dialect.ParseServerURL(raw); err != nil {
		b.WriteString(err.Error())
	}
	return b.String()
}

// FuzzRedactDSN: whatever the password, the user, the host and the form,
// no printed form of the value and no error shows the password. A password
// the output shows anyway with the password swapped for another value (a
// piece of the host, the user, the scheme or the fixed text) is no leak.
func FuzzRedactDSN(f *testing.F) {
	for i := range dsnForms {
		f.Add(uint8(i), "user", "S3CRETpw", "127.0.0.1:5432")
		f.Add(uint8(i), "u", "p@ss:w/rd?#%&)x", "db.internal")
		f.Add(uint8(i), "root", "12/abc@x", "h:1")
	}
	f.Fuzz(func(t *testing.T, form uint8, user, pw, host string) {
		if len(pw) < 4 {
			return
		}
		build := dsnForms[int(form)%len(dsnForms)]
		raw := build(user, pw, host)
		out := shown(raw)
		if !strings.Contains(out, pw) {
			return
		}
		other := shown(build(user, "Q9Z8Y7W6", host))
		if strings.Contains(other, pw) || strings.Contains(user+host, pw) {
			return // the password is also somewhere else in the value or the text
		}
		t.Fatalf("password %q shows for %q:\n%s", pw, raw, out)
	})
}

// FuzzParseDSN: any input either parses to an engine or fails with a
// typed error, and never panics.
func FuzzParseDSNTyped(f *testing.F) {
	for _, s := range []string{"sqlite:///a.db", "postgres://u:p@h:5432/db", "mysql://r@h/db", "/tmp/x.db", "mysql://u:p%@h/db", "::::", "postgres://[::1]:5/x", "nats://u:p@h:1,nats://h:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := dialect.ParseDSN(s); err != nil && !errors.Is(err, dialect.ErrBadDSN) {
			t.Fatalf("untyped error %v", err)
		}
		if _, err := dialect.ParseServerURL(s); err != nil && !errors.Is(err, dialect.ErrBadURL) {
			t.Fatalf("untyped URL error %v", err)
		}
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"nats://u:S3CRETpw@127.0.0.1:4222":               "nats://127.0.0.1:4222",
		"nats://tok3n@h:1,tls://u:pw@h2:2":               "nats://h:1,tls://h2:2",
		"nats://u:S3C%RETpw@h:1":                         "nats://...",
		"nats//u:pw@h":                                   "nats//...",
		"u:pw@h:1":                                       "...",
		"postgres://u:pw@h/db?password=x&sslmode=verify": "postgres://h",
	} {
		if got := dialect.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"postgres://u:pw@h/db":       "postgres://u:xxxxx@h/db",
		"postgres//u:pw@h/db":        "postgres//...",
		"u:pw@h/db":                  "...",
		"postgres://u:p@ss:1/x@h/db": "postgres://...",
	} {
		if got := dialect.RedactDSN(in); got != want {
			t.Errorf("RedactDSN(%q) = %q, want %q", in, got, want)
		}
	}
}
