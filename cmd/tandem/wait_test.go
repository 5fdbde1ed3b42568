package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// waitEventJSON is what the tests read of a `tandem --json wait` event.
type waitEventJSON struct {
	Schema  string `json:"schema"`
	Event   string `json:"event"`
	Outcome string `json:"outcome"`
	State   struct {
		Met     bool    `json:"met"`
		Now     string  `json:"now"`
		Phase   *string `json:"phase"`
		Lagging []struct {
			ID string `json:"id"`
		} `json:"lagging"`
		Floor *struct {
			Release int64 `json:"release"`
		} `json:"floor"`
	} `json:"state"`
}

// backgroundWait runs `tandem --json wait ARGS` in a goroutine. Its events
// arrive on the returned channel as they are printed; done gets the exit
// code once it returns.
func backgroundWait(t *testing.T, args ...string) (events <-chan waitEventJSON, done <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	evs := make(chan waitEventJSON, 100)
	code := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		c := run(context.Background(), append([]string{"--json", "wait"}, args...), pw, &errOut)
		pw.Close()
		code <- c
	}()
	go func() {
		defer close(evs)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			var ev waitEventJSON
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Schema == "" || ev.Event == "" {
				t.Errorf("wait printed %q, not an event: %v", sc.Text(), err)
			}
			evs <- ev
		}
	}()
	return evs, code
}

// next is the next event, failing the test when none comes in time.
func next(t *testing.T, evs <-chan waitEventJSON) waitEventJSON {
	t.Helper()
	select {
	case ev, ok := <-evs:
		if !ok {
			t.Fatal("the wait ended without a result")
		}
		return ev
	case <-time.After(time.Minute):
		t.Fatal("no event from the wait within a minute")
	}
	return waitEventJSON{}
}

// result reads events up to the result and the exit code.
func result(t *testing.T, evs <-chan waitEventJSON, done <-chan int) (waitEventJSON, int) {
	t.Helper()
	for {
		ev := next(t, evs)
		if ev.Event == "result" {
			select {
			case code := <-done:
				return ev, code
			case <-time.After(time.Minute):
				t.Fatal("the wait printed its result and did not return")
			}
		}
	}
}

// TestWait walks a move from legacy to contracted on every engine and
// waits at each step: for a phase another runner reaches, for instances to
// acknowledge it, for a timeout (exit 3), and for what can never be
// (exit 2) once the move is finalized and then contracted. No wait writes
// anything.
func TestWait(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, plan, db := productsFixture(t, e.Name)
			ctx := context.Background()
			db.MustExec(`INSERT INTO products (id, price) VALUES (1, 1.50), (2, 2.25), (3, 3.00)`)
			do := func(want int, args ...string) string {
				t.Helper()
				out, errOut, code := tandem(t, append([]string{"--db", dsn}, args...)...)
				if code != want {
					t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, want, out, errOut)
				}
				return out
			}
			do(exitOK, "schema", "ensure")
			do(exitOK, "moves", "--plan", plan, "apply")
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Host: "h1", Release: 7}); err != nil {
				t.Fatal(err)
			}
			acts := func(phase string) {
				t.Helper()
				if err := reg.Heartbeat(ctx, "web-1", services.Heartbeat{Phases: map[string]string{"price_cents": phase}}); err != nil {
					t.Fatal(err)
				}
			}
			// Every wait below names no plan: it reads the move from the
			// ledger.
			wait := func(args ...string) []string { return append([]string{"--db", dsn}, args...) }

			// A timeout: exit 3, and the database as it was.
			before := dbtest.Dump(t, db)
			out := do(exitBlocked, wait("wait", "--move", "price_cents", "--phase", "read-new", "--timeout", "300ms", "--interval", "100ms")...)
			if !strings.HasPrefix(out, "Timed out after 300ms waiting for move price_cents at read-new: move price_cents is at legacy") {
				t.Fatalf("timeout: %q", out)
			}
			if after := dbtest.Dump(t, db); after != before {
				t.Fatalf("a wait changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}

			// Met when another runner advances the move.
			evs, done := backgroundWait(t, wait("--move", "price_cents", "--phase", "write-both", "--timeout", "2m", "--interval", "100ms")...)
			if ev := next(t, evs); ev.Event != "waiting" || *ev.State.Phase != "legacy" {
				t.Fatalf("first event: %+v", ev)
			}
			do(exitOK, "moves", "advance", "price_cents")
			if ev, code := result(t, evs, done); code != exitOK || ev.Outcome != "met" || *ev.State.Phase != "write-both" {
				t.Fatalf("phase wait: exit %d, %+v", code, ev)
			}

			// Met when the instance reports the phase.
			evs, done = backgroundWait(t, wait("--acked", "--move", "price_cents", "--timeout", "2m", "--interval", "100ms")...)
			if ev := next(t, evs); ev.Event != "waiting" || len(ev.State.Lagging) != 1 || ev.State.Lagging[0].ID != "web-1" {
				t.Fatalf("first event: %+v", ev)
			}
			acts("write-both")
			if ev, code := result(t, evs, done); code != exitOK || ev.Outcome != "met" || len(ev.State.Lagging) != 0 {
				t.Fatalf("acked wait: exit %d, %+v", code, ev)
			}

			// Met at once when the gate is open already.
			do(exitOK, "moves", "backfill", "price_cents")
			do(exitOK, "moves", "verify", "price_cents")
			if out := do(exitOK, wait("wait", "--move", "price_cents", "--gate-open")...); !strings.Contains(out, "read-new is open") {
				t.Fatalf("gate wait: %q", out)
			}
			do(exitOK, "moves", "advance", "price_cents")
			acts("read-new")
			do(exitOK, "moves", "advance", "price_cents")
			acts("write-new")
			// Before finalize, going back to read-new is still possible: a
			// wait for it waits.
			do(exitBlocked, wait("wait", "--move", "price_cents", "--phase", "read-new", "--timeout", "200ms", "--interval", "100ms")...)
			do(exitOK, "moves", "finalize", "price_cents", "--yes")

			// Finalized: never back to read-new (exit 2, at once).
			before = dbtest.Dump(t, db)
			out = do(exitBadInput, wait("wait", "--move", "price_cents", "--phase", "read-new", "--timeout", "0")...)
			if !strings.HasPrefix(out, "Move price_cents can never be at read-new: it is at write-new and finalized at release") {
				t.Fatalf("never: %q", out)
			}
			var ev waitEventJSON
			out, errOut, code := tandem(t, wait("--json", "wait", "--move", "price_cents", "--phase", "write-both")...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || code != exitBadInput || ev.Event != "result" || ev.Outcome != "never" ||
				!strings.Contains(errOut, `"code":"refused"`) {
				t.Fatalf("never --json: exit %d, %v\n%s%s", code, err, out, errOut)
			}
			if after := dbtest.Dump(t, db); after != before {
				t.Fatalf("a wait changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}

			// Contracted: no next gate, and no phase but contracted.
			do(exitOK, "moves", "advance", "price_cents", "--yes")
			do(exitOK, wait("wait", "--move", "price_cents", "--phase", "contracted")...)
			if out := do(exitBadInput, wait("wait", "--move", "price_cents", "--gate-open")...); !strings.Contains(out, "can never open: move price_cents is contracted") {
				t.Fatalf("gate of a contracted move: %q", out)
			}
			do(exitBadInput, wait("wait", "--move", "price_cents", "--phase", "write-new")...)
		})
	}
}

// TestWaitWokenByNATS waits for the floor with a poll interval far longer
// than the test: only the registry's notice on NATS can wake it in time.
func TestWaitWokenByNATS(t *testing.T) {
	dsn := dbtest.DSN(t, dialect.SQLite)
	if _, errOut, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
		t.Fatal(errOut)
	}
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	ctx := context.Background()
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reg, err := services.New(ctx, db, services.WithNATS(nc))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 7}); err != nil {
		t.Fatal(err)
	}
	evs, done := backgroundWait(t, "--db", dsn, "--nats", ns.ClientURL(), "--floor", "8", "--interval", "1h", "--timeout", "45s")
	// The first event comes after the wait subscribed.
	if ev := next(t, evs); ev.Event != "waiting" || ev.State.Floor == nil || ev.State.Floor.Release != 7 {
		t.Fatalf("first event: %+v", ev)
	}
	changed := time.Now()
	if err := reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 8}, services.WithReplace()); err != nil {
		t.Fatal(err)
	}
	if ev, code := result(t, evs, done); code != exitOK || ev.Outcome != "met" || ev.State.Floor.Release != 8 {
		t.Fatalf("floor wait: exit %d, %+v", code, ev)
	}
	t.Logf("the wait saw the new floor %s after the registration", time.Since(changed).Round(time.Microsecond))
}

func TestWaitBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "say what to wait for"},
		{[]string{"--phase", "read-new"}, "--phase needs --move NAME"},
		{[]string{"--move", "m", "--phase", "sideways"}, "sideways"},
		{[]string{"--move", "m", "--phase", "read-new", "--acked"}, "--phase and --acked: wait for one condition at a time"},
		{[]string{"--floor", "0"}, "--floor 0: a release is at least 1"},
		{[]string{"--floor", "3", "--move", "m"}, "--move does not go with --floor"},
		{[]string{"--acked", "--service", "shop"}, "--service goes with --floor"},
		{[]string{"--acked", "--interval", "1ms"}, "--interval 1ms: want at least 100ms"},
		{[]string{"--acked", "--timeout", "-1s"}, "--timeout -1s"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// Refused before the database (which does not exist) is opened.
			_, errOut, code := tandem(t, append([]string{"--db", filepath.Join(t.TempDir(), "none.db"), "wait"}, tc.args...)...)
			if code != exitBadInput || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
		})
	}
}

// TestWaitInterrupted stops a wait without a timeout as SIGINT does (the
// command's context ends): exit 130.
func TestWaitInterrupted(t *testing.T) {
	dsn := dbtest.DSN(t, dialect.SQLite)
	if _, errOut, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
		t.Fatal(errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	code := make(chan int, 1)
	go func() {
		c := run(ctx, []string{"--db", dsn, "--json", "wait", "--floor", "3", "--timeout", "0", "--interval", "100ms"}, pw, io.Discard)
		pw.Close()
		code <- c
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.Contains(sc.Text(), `"event":"waiting"`) {
		t.Fatalf("first event: %q", sc.Text())
	}
	cancel()
	for sc.Scan() {
	}
	select {
	case c := <-code:
		if c != exitInterrupted {
			t.Fatalf("interrupted wait: exit %d, want %d", c, exitInterrupted)
		}
	case <-time.After(time.Minute):
		t.Fatal("the wait did not stop when interrupted")
	}
}
