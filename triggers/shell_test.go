package triggers_test

import (
	"bytes"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// shellScript is what an operator types into the engine's own client,
// knowing nothing of tandem: some statements write only old, others only
// new.
const shellScript = `
INSERT INTO items (id, price_cents) VALUES (1, 250);
INSERT INTO items (id, price_mills) VALUES (2, 7000);
UPDATE items SET price_mills = 3000 WHERE id = 1;
UPDATE items SET price_cents = 8 WHERE id = 2;
INSERT INTO orders (region, id, price_cents) VALUES ('eu', 1, 5);
INSERT INTO orders (region, id) VALUES ('us', 1);
INSERT INTO order_prices (order_region, order_id, price_mills) VALUES ('us', 1, 90);
UPDATE order_prices SET price_mills = 120 WHERE order_region = 'eu';
DELETE FROM orders WHERE region = 'us';
`

// shellCommand returns the engine's command-line client reading a script
// from stdin, or skips when the client is not installed.
func shellCommand(t *testing.T, db *dialect.DB) *exec.Cmd {
	t.Helper()
	dsn := db.DSN().Redacted()
	find := func(names ...string) string {
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				return p
			}
		}
		t.Skipf("none of %v installed", names)
		return ""
	}
	switch db.Engine() {
	case dialect.SQLite:
		return exec.Command(find("sqlite3"), "-bail", strings.TrimPrefix(dsn, "sqlite://"))
	case dialect.Postgres:
		if strings.Contains(dsn, "xxxxx") {
			t.Skip("psql test needs a DSN without a password")
		}
		return exec.Command(find("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn)
	case dialect.MySQL:
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := u.User.Password(); ok {
			t.Skip("mariadb client test needs a DSN without a password")
		}
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		return exec.Command(find("mariadb", "mysql"), "-h", u.Hostname(), "-P", port, "-u", u.User.Username(), strings.Trim(u.Path, "/"))
	}
	t.Fatalf("no client for %s", db.Engine())
	return nil
}

// TestShellClients runs plain SQL through sqlite3, psql and the mariadb
// client: the triggers keep both sides consistent for writers that go
// through no driver and no tandem code at all.
func TestShellClients(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		d := db.Engine()
		createSchema(t, db)
		installMoves(t, db, d, "same_xform", "cross_xform")
		cmd := shellCommand(t, db)
		cmd.Stdin = strings.NewReader(shellScript)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd.Path, err, out.String())
		}
		want := map[string][]string{
			"items":        {"1,300,3000", "2,8,80"},
			"orders":       {"eu,1,12"},
			"order_prices": {"eu,1,120"},
		}
		cols := map[string][]string{
			"items":        {"id", "price_cents", "price_mills"},
			"orders":       {"region", "id", "price_cents"},
			"order_prices": {"order_region", "order_id", "price_mills"},
		}
		for table, w := range want {
			if got := dump(t, db, d, table, cols[table]...); !slices.Equal(got, w) {
				t.Errorf("%s: got %q, want %q", table, got, w)
			}
		}
	})
}
