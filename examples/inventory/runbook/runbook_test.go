package runbook_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"

	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

// The binaries a user builds: the CLI, the server and the job.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "tandem-runbook-bin-*")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/",
			"./cmd/tandem", "./examples/inventory/cmd/inventory-server", "./examples/inventory/cmd/inventory-job")
		cmd.Dir = "../../.."
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is one process of the example, started and stopped as an operator
// (or an orchestrator) does.
type proc struct {
	name string
	args []string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	line chan string
	exit chan error
}

func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(bin), args: args, line: make(chan string, 1000), exit: make(chan error, 1)}
	p.cmd = exec.Command(bin, args...)
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &lockedWriter{p: p}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.line <- sc.Text():
			default:
			}
		}
		p.exit <- p.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s %v:\n%s", p.name, p.args, p.output())
		}
	})
	return p
}

type lockedWriter struct{ p *proc }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// await waits for a line of output starting with prefix.
func (p *proc) await(t *testing.T, prefix string) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case l := <-p.line:
			if strings.HasPrefix(l, prefix) {
				return
			}
		case err := <-p.exit:
			t.Fatalf("%s %v exited (%v) before printing %q:\n%s", p.name, p.args, err, prefix, p.output())
		case <-deadline:
			t.Fatalf("%s %v printed no %q in 2 minutes:\n%s", p.name, p.args, prefix, p.output())
		}
	}
}

// term stops the process as the runbook's step 2 does (SIGTERM) and
// requires a clean exit that says it left.
func (p *proc) term(t *testing.T, says string) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exit:
		if err != nil || !strings.Contains(p.output(), says) {
			t.Fatalf("%s %v: exit %v, want a clean exit saying %q:\n%s", p.name, p.args, err, says, p.output())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s %v did not exit within 2 minutes of SIGTERM:\n%s", p.name, p.args, p.output())
	}
}

// tandem runs one of the runbook's commands and returns its output and
// exit code.
func tandem(t *testing.T, bin, dsn string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "tandem"), args...)
	cmd.Env = append(os.Environ(), "TANDEM_DB="+dsn)
	cmd.Dir = t.TempDir() // no stray ./tandem-plan.yaml
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("tandem %v: %v", args, err)
	return "", -1
}

// must runs a command that must exit 0 and print each of want.
func must(t *testing.T, bin, dsn string, args []string, want ...string) string {
	t.Helper()
	out, code := tandem(t, bin, dsn, args...)
	if code != 0 {
		t.Fatalf("tandem %s: exit %d:\n%s", strings.Join(args, " "), code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("tandem %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	t.Logf("tandem %s: ok", strings.Join(args, " "))
	return out
}

// TestRunbookRollingUpgrade walks docs/runbook.md's rolling upgrade
// literally, with the example's processes as separate programs: two
// inventory servers and the price job start at release 41, and are rolled
// one at a time to 42, 43 and 44 under RPC load while the operator's
// commands take items.price to price_cents, until the move is contracted.
// Every acknowledged write is read back, through every phase and at the
// end, and the seeded rows the backfill moved read right from price_cents.
func TestRunbookRollingUpgrade(t *testing.T) {
	bin := binaries(t)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			walkRunbook(t, bin, dbtest.DSN(t, e.Name))
		})
	}
}

func walkRunbook(t *testing.T, bin, dsn string) {
	ctx := context.Background()
	ns := natstest.New(t)
	natsURL := ns.ClientURL()
	dir := t.TempDir()
	prices := filepath.Join(dir, "prices.txt")
	writePrices := func(base int64) {
		t.Helper()
		body := fmt.Sprintf("job-a %d\njob-b %d\nnot-an-item 100\n", base, base+100)
		if err := os.WriteFile(prices, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writePrices(4100)
	fast := []string{"-heartbeat", "200ms", "-refresh", "200ms", "-v"}
	server := func(id string, release int64) *proc {
		p := start(t, filepath.Join(bin, "inventory-server"), append([]string{"-nats", natsURL, "-db", dsn, "-id", id, "-release", fmt.Sprint(release)}, fast...)...)
		p.await(t, "serving ")
		return p
	}
	job := func(release int64) *proc {
		p := start(t, filepath.Join(bin, "inventory-job"), append([]string{"-nats", natsURL, "-db", dsn, "-id", "job-1", "-release", fmt.Sprint(release), "-prices", prices, "-every", "100ms"}, fast...)...)
		p.await(t, "pass ")
		return p
	}

	// Before anything: tandem's own tables.
	must(t, bin, dsn, []string{"schema", "ensure", "--dry-run"})
	must(t, bin, dsn, []string{"schema", "ensure"})

	// The cluster at release 41, with rows written before tandem arrived.
	procs := map[string]*proc{"inv-1": server("inv-1", 41), "inv-2": server("inv-2", 41)}
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const seeded = 300
	for i := range seeded {
		if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO items (id, name, quantity, price) VALUES (?, ?, ?, ?)`), fmt.Sprintf("seed-%03d", i), "seeded", i, i+1); err != nil {
			t.Fatal(err)
		}
	}
	l := newLoad(t, ctx, db, natsURL)
	for _, id := range []string{"job-a", "job-b"} {
		l.put(ctx, id, 100)
	}
	procs["job-1"] = job(41)
	l.start(ctx)

	// 1. Check the starting point.
	must(t, bin, dsn, []string{"status"}, "Nothing blocks: it is safe to roll the next instance.")
	must(t, bin, dsn, []string{"services", "floor"}, "release 41")

	reg, err := services.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	// roll is steps 2 and 3: every process, one at a time, then the floor.
	roll := func(release int64) {
		t.Helper()
		writePrices(release * 100)
		for _, id := range []string{"inv-1", "inv-2", "job-1"} {
			if id == "job-1" {
				procs[id].term(t, "left the registry")
				procs[id] = job(release)
				continue
			}
			procs[id].term(t, "drained and deregistered")
			procs[id] = server(id, release)
		}
		must(t, bin, dsn, []string{"wait", "--floor", fmt.Sprint(release), "--timeout", "2m", "--interval", "100ms"})
		must(t, bin, dsn, []string{"services", "floor"}, fmt.Sprintf("Floor: release %d", release))
	}
	// advance is step 4: the dry run, the transition, and the instances
	// picking it up.
	advance := func(to move.Phase, flags ...string) {
		t.Helper()
		must(t, bin, dsn, []string{"moves", "advance", "price_cents", "--dry-run"})
		must(t, bin, dsn, append([]string{"moves", "advance", "price_cents"}, flags...), to.String())
		// The runbook's wait: every instance acts on the new phase.
		must(t, bin, dsn, []string{"wait", "--acked", "--move", "price_cents", "--timeout", "2m", "--interval", "100ms"})
		waitActing(t, ctx, reg, to) // and the registry agrees
		l.check(t)
	}

	roll(42)
	advance(move.WriteBoth)
	// 5. Backfill and verify, while traffic runs.
	must(t, bin, dsn, []string{"moves", "backfill", "price_cents"})
	must(t, bin, dsn, []string{"moves", "verify", "price_cents"})
	// 6. Next releases.
	roll(43)
	advance(move.ReadNew)
	roll(44)
	advance(move.WriteNew)
	// 7. Finalize and contract, with the dry run first.
	must(t, bin, dsn, []string{"moves", "finalize", "price_cents", "--yes"})
	must(t, bin, dsn, []string{"moves", "advance", "price_cents", "--dry-run"})
	must(t, bin, dsn, []string{"moves", "sql", "price_cents", "--phase", "contracted", "--dialect", string(db.Engine())})
	// It cannot be undone: a copy of the database first, and --yes, as no
	// one is at a terminal to confirm it.
	backupFile := filepath.Join(t.TempDir(), "price_cents-before-contract")
	must(t, bin, dsn, []string{"moves", "advance", "price_cents", "--dry-run", "--backup", backupFile}, "would first take a backup into "+backupFile)
	advance(move.Contracted, "--yes", "--backup", backupFile)
	must(t, bin, dsn, []string{"status"}, "backup 1 before contracted: "+backupFile)
	l.stop(t)
	must(t, bin, dsn, []string{"status"}, "Nothing blocks: it is safe to roll the next instance.")
	must(t, bin, dsn, []string{"moves", "list"}, "contracted")

	// The old column is gone; everything reads right from the new one,
	// and the job's last pass, at release 44, set the 44 price list.
	checkContracted(t, ctx, db, seeded, map[string]int64{"job-a": 4400, "job-b": 4500})
	for _, id := range []string{"inv-1", "inv-2"} {
		procs[id].term(t, "drained and deregistered")
	}
	procs["job-1"].term(t, "left the registry")
	t.Logf("%d writes and %d reads over RPC, all acknowledged ones read back", l.writes, l.reads)
}

// waitActing waits until every instance that is not deleted reports the
// move at phase p: what the next transition's gate waits for.
// checkContracted checks the move's end: items.price is gone, every
// seeded row reads right from price_cents, and the rows of want hold
// their prices.
func checkContracted(t *testing.T, ctx context.Context, db *dialect.DB, seeded int, want map[string]int64) {
	t.Helper()
	if _, err := db.ExecContext(ctx, `SELECT price FROM items`); err == nil {
		t.Fatal("items.price still exists after the contract")
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM items WHERE id LIKE 'seed-%' AND price_cents = (quantity + 1) * 100`); err != nil || n != seeded {
		t.Fatalf("%d of %d seeded rows read right from price_cents (%v)", n, seeded, err)
	}
	for id, cents := range want {
		var got int64
		if err := db.GetContext(ctx, &got, db.Rebind(`SELECT price_cents FROM items WHERE id = ?`), id); err != nil || got != cents {
			t.Errorf("%s: price_cents %d (%v), want %d", id, got, err, cents)
		}
	}
}

func waitActing(t *testing.T, ctx context.Context, reg *services.Registry, p move.Phase) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		list, err := reg.List(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		behind := []string{}
		for _, in := range list {
			if in.Phases["price_cents"] != p.String() {
				behind = append(behind, fmt.Sprintf("%s at %s", in.ID, in.Phases["price_cents"]))
			}
		}
		if len(behind) == 0 && len(list) == 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances not acting on %s after 2 minutes: %v (of %d)", p, behind, len(list))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// load writes and reads items over RPC, capped by the registry, as a
// client of the service does during the upgrade.
type load struct {
	client        *rpcver.Client
	cache         *services.Cache
	nc            *nats.Conn
	mu            sync.Mutex
	last          map[string]int64 // last acknowledged price per key
	writes, reads int
	fail          []string
	halt          atomic.Bool // checked between calls: no call is cut off midway, so every outcome is known
	done          chan struct{}
}

func newLoad(t *testing.T, ctx context.Context, db *dialect.DB, url string) *load {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	reg, err := services.New(ctx, db, services.WithNATS(nc))
	if err != nil {
		t.Fatal(err)
	}
	cache, err := services.NewCache(ctx, reg, nc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	client, err := rpcver.NewClient(nc, inventory.API, cache)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return &load{client: client, cache: cache, nc: nc, last: map[string]int64{}}
}

func (l *load) put(ctx context.Context, id string, cents int64) error {
	_, err := inventory.PutItem.Call(ctx, l.client, &pb.PutItemRequest{Item: &pb.Item{Id: id, Name: id, Quantity: 1, PriceCents: cents}})
	if err == nil {
		l.mu.Lock()
		l.last[id], l.writes = cents, l.writes+1
		l.mu.Unlock()
	}
	return err
}

func (l *load) start(ctx context.Context) {
	l.done = make(chan struct{})
	go func() {
		defer close(l.done)
		for i := int64(1); !l.halt.Load(); i++ {
			id := fmt.Sprintf("rpc-%d", i%8)
			if err := l.put(ctx, id, i*100); err != nil {
				l.failed("put %s: %v", id, err)
				continue
			}
			resp, err := inventory.GetItem.Call(ctx, l.client, &pb.GetItemRequest{Id: id})
			l.mu.Lock()
			l.reads++
			l.mu.Unlock()
			switch {
			case err != nil:
				l.failed("get %s: %v", id, err)
			case err == nil && resp.Item.GetPriceCents() != i*100:
				l.failed("get %s: price_cents %d after writing %d", id, resp.Item.GetPriceCents(), i*100)
			}
		}
	}()
}

func (l *load) failed(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fail = append(l.fail, fmt.Sprintf(format, args...))
}

// check fails the test on any failed request so far.
func (l *load) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fail) > 0 {
		t.Fatalf("%d request(s) failed, first: %s", len(l.fail), l.fail[0])
	}
}

// stop ends the load and reads every key's last acknowledged write back.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.halt.Store(true)
	<-l.done
	l.check(t)
	ctx := context.Background()
	for id, want := range l.last {
		if strings.HasPrefix(id, "job-") {
			continue // the job has written these since
		}
		resp, err := inventory.GetItem.Call(ctx, l.client, &pb.GetItemRequest{Id: id})
		if err != nil || resp.Item.GetPriceCents() != want {
			t.Errorf("%s reads %v (%v), last acknowledged write %d", id, resp.GetItem(), err, want)
		}
	}
}
