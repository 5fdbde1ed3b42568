package runbook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// offlineSection returns the lines of the sh block of docs/runbook.md's
// offline upgrade, as written.
func offlineSection(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../../docs/runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## An offline upgrade\n")
	if !ok {
		t.Fatal("docs/runbook.md has no section \"An offline upgrade\"")
	}
	rest, _, _ = strings.Cut(rest, "\n## ")
	_, block, ok := strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatal("the offline upgrade has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	return strings.Split(strings.TrimSpace(block), "\n")
}

// TestRunbookOfflineUpgrade runs docs/runbook.md's offline upgrade as it
// is written, every command with bash, on every engine: the example's
// server runs release 41, the freeze makes it refuse writes with the typed
// error while it still serves reads, it stops, the commands between the
// two `tandem path` are the ones the planner prints, in its order, and
// they take the move to contracted with a backup first; release 44 starts
// frozen, and the thaw lets it write. The backup restores to the database
// as it was before the contract.
func TestRunbookOfflineUpgrade(t *testing.T) {
	bin := binaries(t)
	lines := offlineSection(t)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			walkOffline(t, bin, dbtest.DSN(t, e.Name), lines)
		})
	}
}

func walkOffline(t *testing.T, bin, dsn string, lines []string) {
	ctx := context.Background()
	ns := natstest.New(t)
	server := func(id string, release int64) *proc {
		p := start(t, filepath.Join(bin, "inventory-server"), "-nats", ns.ClientURL(), "-db", dsn, "-id", id, "-release", fmt.Sprint(release),
			"-heartbeat", "200ms", "-refresh", "200ms", "-v")
		p.await(t, "serving ")
		return p
	}
	must(t, bin, dsn, []string{"schema", "ensure"})
	srv := server("inv-1", 41)
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const seeded = 200
	for i := range seeded {
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO items (id, name, quantity, price) VALUES (?, ?, ?, ?)`), fmt.Sprintf("seed-%03d", i), "seeded", i, i+1); err != nil {
			t.Fatal(err)
		}
	}
	l := newLoad(t, ctx, db, ns.ClientURL())
	if err := l.put(ctx, "before", 4100); err != nil {
		t.Fatal(err)
	}
	// frozen checks that a write is refused with the freeze's typed error
	// and that a read is answered.
	frozen := func(when string) {
		t.Helper()
		err := l.put(ctx, "during", 4200)
		var re *rpcver.RemoteError
		if !errors.Is(err, rpcver.ErrFrozen) || !errors.As(err, &re) || re.Code != rpcver.CodeFrozen || !strings.Contains(err.Error(), "offline upgrade to release 44") {
			t.Fatalf("%s: a write got %v, want the freeze's refusal (code %s)", when, err, rpcver.CodeFrozen)
		}
		resp, err := inventory.GetItem.Call(ctx, l.client, &pb.GetItemRequest{Id: "before"})
		if err != nil || inventory.Cents(resp.GetItem()) != 4100 {
			t.Fatalf("%s: a read got %v, %v", when, resp.GetItem(), err)
		}
	}

	dir := t.TempDir()
	var planned []string // the commands the first tandem path printed
	paths := 0
	for _, line := range lines {
		switch {
		case strings.HasPrefix(line, "# stop every instance of release 41"):
			frozen("release 41 under the freeze")
			srv.term(t, "drained and deregistered")
			continue
		case strings.HasPrefix(line, "# start release 44"):
			srv = server("inv-1", 44)
			frozen("release 44 started during the freeze")
			continue
		case strings.HasPrefix(line, "#"):
			t.Fatalf("a comment line the test does not know what to do for: %q", line)
		}
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", line)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "TANDEM_DB="+dsn, "TANDEM_PLAN=", "TANDEM_NATS=", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		t.Logf("%s: ok", line)
		cmdline, _, _ := strings.Cut(line, "  #")
		cmdline = strings.TrimSpace(cmdline)
		if strings.HasPrefix(line, "tandem path ") {
			paths++
			if paths == 1 {
				planned = pathCommands(t, bin, dsn)
			} else if left := pathCommands(t, bin, dsn); len(left) != 0 {
				t.Fatalf("after the section's steps the path still has %q:\n%s", left, out)
			}
			continue
		}
		if paths == 1 {
			// After the first path: its steps, in its order.
			if len(planned) == 0 || !strings.HasPrefix(cmdline, planned[0]) {
				t.Fatalf("the section runs %q where tandem path says %q", cmdline, planned)
			}
			planned = planned[1:]
		}
		if strings.HasPrefix(line, "tandem thaw") {
			if err := l.put(ctx, "after", 4400); err != nil {
				t.Fatalf("a write after the thaw: %v", err)
			}
		}
	}
	if paths != 2 || len(planned) != 0 {
		t.Fatalf("%d tandem path lines; planned steps the section did not run: %q", paths, planned)
	}
	srv.term(t, "drained and deregistered")

	// The move is done, and the writes before and after the freeze are there.
	checkContracted(t, ctx, db, seeded, map[string]int64{"before": 4100, "after": 4400})
	var during int
	if err := db.GetContext(ctx, &during, `SELECT COUNT(*) FROM items WHERE id = 'during'`); err != nil || during != 0 {
		t.Errorf("a write refused by the freeze is in the table (%d, %v)", during, err)
	}
	// The backup is the database before the contract: price still there.
	restored := dbtest.Restore(t, db.Engine(), filepath.Join(dir, "price_cents-before-contract.backup"))
	var n int
	if err := restored.GetContext(ctx, &n, `SELECT COUNT(*) FROM items WHERE price IS NOT NULL`); err != nil || n != seeded+1 {
		t.Fatalf("the backup has %d rows with a price (%v), want %d", n, err, seeded+1)
	}
}

// pathCommands is the command of every step tandem path --to 44 prints
// now, the rolls excepted (with no instance registered there is none to
// roll: the release starts after).
func pathCommands(t *testing.T, bin, dsn string) []string {
	t.Helper()
	out, code := tandem(t, bin, dsn, "--json", "path", "--to", "44")
	if code != 0 {
		t.Fatalf("tandem --json path --to 44: exit %d\n%s", code, out)
	}
	var doc struct {
		Steps []struct {
			Kind    string `json:"kind"`
			Command string `json:"command"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var cmds []string
	for _, s := range doc.Steps {
		if s.Kind != "roll" {
			cmds = append(cmds, s.Command)
		}
	}
	return cmds
}
