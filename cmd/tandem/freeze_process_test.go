package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

const freezeReason = "offline step: restore of the catalog"

// writerStats is what a writer process reports, one JSON object a line.
type writerStats struct {
	ID      string `json:"id"`
	Writes  int64  `json:"writes"`  // committed
	Refused int64  `json:"refused"` // BeginWrite refused with the freeze's *FrozenError
	Reads   int64  `json:"reads"`
	Errors  int64  `json:"errors"` // anything else: the test fails
	LastErr string `json:"last_err"`
	Ready   bool   `json:"ready"` // registered, waiting for the go on stdin
	Done    bool   `json:"done"`
}

// TestFreezeWithWriterProcesses runs three writer processes (this test
// binary, re-executed) that write and read the cents move as fast as they
// can, each write in a transaction that logs it in freeze_log, while the
// operator freezes and thaws writes with the CLI, on every engine:
//   - a freeze waits for every instance that is not deleted: one that never
//     acknowledges (a ghost row) makes it time out with exit 3 naming it;
//     deleted, tandem wait --frozen returns once the writers acknowledged;
//   - from then on no write commits: freeze_log keeps its count while every
//     writer has its writes refused with the typed error, with the freeze's
//     reason, and goes on reading;
//   - after tandem thaw returns, every writer writes again.
func TestFreezeWithWriterProcesses(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			dsn, db := ledgerDB(t, e)
			plan := writeFile(t, "plan.yaml", statusPlan)
			must(t, exitOK, "--db", dsn, "--plan", plan, "moves", "apply")
			db.MustExec(`CREATE TABLE freeze_log (writer VARCHAR(40) NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (writer, n))`)
			ws := startWriters(t, dsn, "w-1", "w-2", "w-3")
			// All set up before any writes: on SQLite a writer's open
			// transactions would keep the others' start waiting.
			ws.waitAll(t, "writers ready", func(s writerStats) bool { return s.Ready })
			ws.start(t)
			ws.waitAll(t, "writes before the freeze", func(s writerStats) bool { return s.Writes >= 20 })

			// An instance that never acknowledges holds the freeze back.
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(ctx, services.Instance{ID: "ghost", Service: "shop", Host: "h-ghost", Release: 1}); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := tandem(t, "--db", dsn, "freeze", "--move", "cents", "--reason", freezeReason, "--timeout", "1s", "--interval", "100ms")
			if code != exitBlocked || !strings.Contains(errOut, "ghost") || !strings.Contains(errOut, "tandem wait --frozen") || !strings.Contains(out, "NOT frozen everywhere") || !strings.Contains(out, "ghost") {
				t.Fatalf("freeze with an instance that never acknowledges: exit %d\n%s%s", code, out, errOut)
			}
			var st struct {
				Freeze struct {
					Frozen     bool `json:"frozen"`
					Everywhere bool `json:"everywhere"`
					Pending    []struct {
						ID string `json:"id"`
					} `json:"pending"`
				} `json:"freeze"`
			}
			stOut, _, _ := tandem(t, "--db", dsn, "--json", "status")
			if err := json.Unmarshal([]byte(stOut), &st); err != nil {
				t.Fatal(err)
			}
			ghostPending := false
			for _, p := range st.Freeze.Pending {
				ghostPending = ghostPending || p.ID == "ghost"
			}
			if st.Freeze.Everywhere || !st.Freeze.Frozen || !ghostPending {
				t.Fatalf("status while ghost has not acknowledged: %+v", st.Freeze)
			}
			must(t, exitOK, "--db", dsn, "services", "delete", "ghost", "--force")
			must(t, exitOK, "--db", dsn, "wait", "--frozen", "--move", "cents", "--timeout", "2m", "--interval", "100ms")
			frozenRound(t, dsn, db, reg, ws, "--move", "cents")

			// Without the ghost the freeze itself returns once every writer
			// acknowledged: counted at once, a write its acknowledgement
			// did not wait for would commit after.
			must(t, exitOK, "--db", dsn, "freeze", "--all", "--reason", freezeReason, "--timeout", "2m", "--interval", "100ms")
			frozenRound(t, dsn, db, reg, ws, "--all")
			// Again: nothing to record, and every instance has acknowledged.
			if out := must(t, exitOK, "--db", dsn, "freeze", "--all", "--reason", freezeReason, "--timeout", "2m"); !strings.Contains(out, "Nothing to record") || !strings.Contains(out, "frozen everywhere") {
				t.Fatalf("freeze again: %s", out)
			}
			must(t, exitOK, "--db", dsn, "thaw", "--all", "--timeout", "2m", "--interval", "100ms")
			thawed := ws.snapshot()
			ws.waitAll(t, "writes after the second thaw", func(s writerStats) bool { return s.Writes >= thawed[s.ID].Writes+20 })
			for id, s := range ws.stop(t) {
				if s.Errors != 0 {
					t.Fatalf("%s: %d error(s) besides refusals, the last: %s", id, s.Errors, s.LastErr)
				}
			}
		})
	}
}

// frozenRound checks a freeze every writer acknowledged, at once: nothing
// commits while every writer has writes refused and goes on reading, each
// writer's row carries the freeze state; then, unless the round is the
// last, it thaws (--move cents or --all, as frozen) and waits for writes
// to resume.
func frozenRound(t *testing.T, dsn string, db *dialect.DB, reg *services.Registry, ws *writers, scope ...string) {
	t.Helper()
	ctx := context.Background()
	frozenAt := count(t, db, `SELECT COUNT(*) FROM freeze_log`)
	before := ws.snapshot()
	ws.waitAll(t, "refusals and reads while frozen", func(s writerStats) bool {
		b := before[s.ID]
		return s.Refused >= b.Refused+20 && s.Reads >= b.Reads+20
	})
	if n := count(t, db, `SELECT COUNT(*) FROM freeze_log`); n != frozenAt {
		t.Fatalf("%d write(s) committed after every instance acknowledged the freeze", n-frozenAt)
	}
	for id, s := range ws.snapshot() {
		if s.Writes != before[id].Writes {
			t.Fatalf("%s committed %d write(s) while frozen", id, s.Writes-before[id].Writes)
		}
	}
	fs, err := dualwrite.ReadFreeze(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for id := range ws.cmds {
		in, err := reg.Get(ctx, id)
		if err != nil || in.Freeze != fs.Seq {
			t.Fatalf("%s's row: freeze %d, want %d (%v)", id, in.Freeze, fs.Seq, err)
		}
	}
	if scope[0] == "--all" {
		return // the caller goes on frozen
	}
	must(t, exitOK, append([]string{"--db", dsn, "thaw", "--timeout", "2m", "--interval", "100ms"}, scope...)...)
	thawed := ws.snapshot()
	ws.waitAll(t, "writes after the thaw", func(s writerStats) bool { return s.Writes >= thawed[s.ID].Writes+20 })
	if n := count(t, db, `SELECT COUNT(*) FROM freeze_log`); n <= frozenAt {
		t.Fatalf("no write committed after the thaw (%d rows)", n)
	}
}

func count(t *testing.T, db *dialect.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.GetContext(context.Background(), &n, q); err != nil {
		t.Fatal(err)
	}
	return n
}

// writers are the writer processes and what each reported last.
type writers struct {
	mu    sync.Mutex
	cond  *sync.Cond
	last  map[string]writerStats
	cmds  map[string]*exec.Cmd
	gos   map[string]io.WriteCloser
	ended map[string]chan struct{}
}

// start tells every writer to begin writing.
func (ws *writers) start(t *testing.T) {
	t.Helper()
	for id, w := range ws.gos {
		if _, err := io.WriteString(w, "go\n"); err != nil {
			t.Fatalf("writer %s: %v", id, err)
		}
	}
}

func startWriters(t *testing.T, dsn string, ids ...string) *writers {
	t.Helper()
	ws := &writers{last: map[string]writerStats{}, cmds: map[string]*exec.Cmd{}, gos: map[string]io.WriteCloser{}, ended: map[string]chan struct{}{}}
	ws.cond = sync.NewCond(&ws.mu)
	for _, id := range ids {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFreezeWriterChild$")
		cmd.Env = append(os.Environ(), "TANDEM_FREEZE_WRITER="+id, "TANDEM_FREEZE_DSN="+dsn)
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if ws.gos[id], err = cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ended := make(chan struct{})
		ws.cmds[id], ws.ended[id] = cmd, ended
		t.Cleanup(func() { _ = cmd.Process.Kill(); <-ended })
		go ws.read(id, stdout, ended)
	}
	return ws
}

func (ws *writers) read(id string, r io.Reader, ended chan struct{}) {
	defer close(ended)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var s writerStats
		if json.Unmarshal(sc.Bytes(), &s) != nil || s.ID != id {
			continue // the test framework's own lines
		}
		ws.mu.Lock()
		ws.last[id] = s
		ws.cond.Broadcast()
		ws.mu.Unlock()
	}
	ws.mu.Lock()
	s := ws.last[id]
	s.Done = true
	ws.last[id] = s
	ws.cond.Broadcast()
	ws.mu.Unlock()
}

func (ws *writers) snapshot() map[string]writerStats {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	out := make(map[string]writerStats, len(ws.last))
	for k, v := range ws.last {
		out[k] = v
	}
	return out
}

// waitAll waits until ok holds for every writer; a writer that ends or
// reports an error first fails the test. The bound only keeps a broken
// run from hanging: the assertions are about order, not speed.
func (ws *writers) waitAll(t *testing.T, what string, ok func(writerStats) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	wake := time.AfterFunc(3*time.Minute, func() { ws.mu.Lock(); ws.cond.Broadcast(); ws.mu.Unlock() })
	defer wake.Stop()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for {
		all := true
		for id := range ws.cmds {
			s, seen := ws.last[id]
			if seen && (s.Errors > 0 || s.Done) {
				t.Fatalf("%s: writer %s ended or failed: %+v", what, id, s)
			}
			if !seen || !ok(s) {
				all = false
			}
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached: %+v", what, ws.last)
		}
		ws.cond.Wait()
	}
}

// stop asks every writer to stop (SIGTERM), and returns what each
// reported last; each must exit 0.
func (ws *writers) stop(t *testing.T) map[string]writerStats {
	t.Helper()
	for _, cmd := range ws.cmds {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
	}
	for id, cmd := range ws.cmds {
		<-ws.ended[id]
		if err := cmd.Wait(); err != nil {
			t.Fatalf("writer %s: %v", id, err)
		}
	}
	return ws.snapshot()
}

// TestFreezeWriterChild is the writer process of
// TestFreezeWithWriterProcesses: an instance that registers, refreshes its
// tracker and heartbeats every 100ms (carrying FreezeAck), and writes and
// reads the cents move in a loop, from a line on stdin until SIGTERM.
func TestFreezeWriterChild(t *testing.T) {
	id := os.Getenv("TANDEM_FREEZE_WRITER")
	if id == "" {
		t.Skip("child process of TestFreezeWithWriterProcesses")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := freezeWriter(ctx, os.Getenv("TANDEM_FREEZE_DSN"), id, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "writer "+id+":", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func freezeWriter(ctx context.Context, dsn, id string, in io.Reader, out io.Writer) error {
	setup := context.WithoutCancel(ctx)
	db, err := dialect.Open(setup, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	mg, err := dualwrite.Load(setup, db, nil)
	if err != nil {
		return err
	}
	tr, err := dualwrite.NewTracker(setup, db, 1, mg.Moves())
	if err != nil {
		return err
	}
	reg, err := services.New(setup, db)
	if err != nil {
		return err
	}
	if err := reg.Register(setup, services.Instance{ID: id, Service: "shop", Release: 1, Phases: tr.Phases(), Freeze: tr.FreezeAck()}); err != nil {
		return err
	}
	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); _ = tr.Run(ctx, 100*time.Millisecond, nil) }()
	go func() {
		defer bg.Done()
		_ = services.KeepAlive(ctx, reg, id, 100*time.Millisecond, func() services.Heartbeat {
			return services.Heartbeat{Phases: tr.Phases(), Freeze: tr.FreezeAck()}
		})
	}()
	s := writerStats{ID: id}
	report := func() {
		b, _ := json.Marshal(s)
		fmt.Fprintln(out, string(b))
	}
	fail := func(err error) {
		s.Errors++
		s.LastErr = err.Error()
	}
	s.Ready = true
	report()
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the go: %w", err)
	}
	lastReport := time.Now()
	for ctx.Err() == nil {
		if _, done, err := tr.BeginWrite("cents"); err != nil {
			var fe *dualwrite.FrozenError
			if errors.As(err, &fe) && errors.Is(err, dualwrite.ErrFrozen) && fe.Reason == freezeReason {
				s.Refused++
			} else {
				fail(err)
			}
			time.Sleep(2 * time.Millisecond)
		} else {
			err := writeOnce(setup, db, id, s.Writes+1)
			done()
			if err != nil {
				fail(err)
			} else {
				s.Writes++
			}
			// Paced, so that on SQLite the writers leave each other (and
			// heartbeats) the one write lock.
			time.Sleep(2 * time.Millisecond)
		}
		_, done := tr.Begin("cents")
		var price float64
		err := db.GetContext(setup, &price, `SELECT price FROM products WHERE id = 1`)
		done()
		if err != nil {
			fail(err)
		} else {
			s.Reads++
		}
		if time.Since(lastReport) >= 20*time.Millisecond || s.Errors > 0 {
			report()
			lastReport = time.Now()
		}
	}
	bg.Wait()
	if err := tr.Wait(setup); err != nil {
		return err
	}
	if err := reg.Deregister(setup, id); err != nil {
		return err
	}
	report()
	return nil
}

// writeOnce logs write n of the writer in a transaction. Every seventh
// write works a while first (begun, not yet committed, holding no database
// lock), so that a freeze finds writes in flight: an acknowledgement that
// did not wait for them would let one commit after the freeze returned.
func writeOnce(ctx context.Context, db *dialect.DB, id string, n int64) error {
	if n%7 == 0 {
		time.Sleep(300 * time.Millisecond)
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	if _, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO freeze_log (writer, n) VALUES (?, ?)`), id, n); err != nil {
		return err
	}
	time.Sleep(time.Millisecond)
	return tx.Commit()
}

// The status page shows the freeze as status prints it: what is frozen,
// the reason, and who has not acknowledged it.
func TestPageShowsFreeze(t *testing.T) {
	since := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	fs := dualwrite.FreezeAcks(dualwrite.FreezeState{Seq: 2, Moves: []string{"cents"}, Reason: "restore", Since: since, At: since},
		services.Snapshot{Instances: []services.Instance{{ID: "web-1", Service: "shop", Host: "h1", Release: 1, State: services.StateUp, HeartbeatAt: since, Freeze: 2},
			{ID: "web-2", Service: "shop", Host: "h2", Release: 1, State: services.StateMissing, HeartbeatAt: since, Freeze: 1}}})
	v := newPageView(statusDoc{Freeze: freezeView(fs, services.DefaultMissingAfter)}, services.Snapshot{}, since)
	var b strings.Builder
	if err := pageTemplate.ExecuteTemplate(&b, "live", v); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<ul id="freeze">`, "frozen on move cents since 2026-12-01T12:00:00Z (freeze state 2): restore", "NOT frozen everywhere", "web-2", "tandem services delete web-2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("page lacks %q:\n%s", want, b.String())
		}
	}
	v = newPageView(statusDoc{}, services.Snapshot{}, since)
	b.Reset()
	if err := pageTemplate.ExecuteTemplate(&b, "live", v); err != nil || strings.Contains(b.String(), `id="freeze"`) {
		t.Errorf("a page before any freeze shows one: %v", err)
	}
}
