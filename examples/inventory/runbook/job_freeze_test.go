package runbook_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
)

// TestJobUnderFreeze runs the price job, a writer that serves no RPC,
// through a write freeze on every engine: once it has acknowledged the
// freeze (tandem freeze returns), its passes count the prices refused and
// go on, applying none, and it does not exit; after the thaw a pass
// applies them again.
func TestJobUnderFreeze(t *testing.T) {
	bin := binaries(t)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			jobUnderFreeze(t, bin, dbtest.DSN(t, e.Name))
		})
	}
}

func jobUnderFreeze(t *testing.T, bin, dsn string) {
	ctx := context.Background()
	ns := natstest.New(t)
	must(t, bin, dsn, []string{"schema", "ensure"})
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.MustExec(inventory.CreateTableIfMissingSQL)
	for _, id := range []string{"job-a", "job-b"} {
		db.MustExec(db.Rebind(`INSERT INTO items (id, name, quantity, price) VALUES (?, 'priced by the job', 1, 1)`), id)
	}
	prices := filepath.Join(t.TempDir(), "prices.txt")
	if err := os.WriteFile(prices, []byte("job-a 4100\njob-b 4200\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	job := start(t, filepath.Join(bin, "inventory-job"), "-nats", ns.ClientURL(), "-db", dsn, "-id", "job-1", "-release", "41",
		"-prices", prices, "-every", "100ms", "-heartbeat", "200ms", "-refresh", "200ms")
	awaitLine(t, job, "2 prices applied")

	const reason = "restore of the price list"
	must(t, bin, dsn, []string{"freeze", "--all", "--reason", reason, "--timeout", "2m", "--interval", "100ms"}, "frozen everywhere")
	// The job acknowledged: from here on none of its writes commits. A
	// price set beside it (no tracker: a freeze does not stop it) stays.
	db.MustExec(`UPDATE items SET price = 7`)
	awaitLine(t, job, "0 prices applied, 0 unknown items, 2 refused while writes are frozen ("+reason)
	awaitLine(t, job, "0 prices applied, 0 unknown items, 2 refused while writes are frozen ("+reason)
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM items WHERE price = 7`); err != nil || n != 2 {
		t.Fatalf("%d of 2 prices stayed as set during the freeze (%v):\n%s", n, err, job.output())
	}
	must(t, bin, dsn, []string{"thaw", "--all", "--timeout", "2m", "--interval", "100ms"}, "thawed everywhere")
	awaitLine(t, job, "2 prices applied")
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM items WHERE price = 7`); err != nil || n != 0 {
		t.Fatalf("%d price(s) not applied after the thaw (%v):\n%s", n, err, job.output())
	}
	job.term(t, "left the registry")
}

// awaitLine waits for a line of p's output containing s.
func awaitLine(t *testing.T, p *proc, s string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l := <-p.line:
			if strings.Contains(l, s) {
				return
			}
		case err := <-p.exit:
			t.Fatalf("%s %v exited (%v) before printing %q:\n%s", p.name, p.args, err, s, p.output())
		case <-deadline:
			t.Fatalf("%s %v printed no %q in 2 minutes:\n%s", p.name, p.args, s, p.output())
		}
	}
}
