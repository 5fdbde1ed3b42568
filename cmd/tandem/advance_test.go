package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// syncBuffer is a bytes.Buffer a command writes while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// holdMoveLock takes tandem's lock on the move from a connection of its
// own and keeps it until release is called.
func holdMoveLock(t *testing.T, db *dialect.DB, name string) (release func()) {
	t.Helper()
	held, free, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- sqldialect.Of(db).Locked(context.Background(), db.SQLX(), "move:"+name, 30*time.Second, func(context.Context, dialect.Querier) error {
			close(held)
			<-free
			return nil
		})
	}()
	select {
	case <-held:
	case err := <-done:
		t.Fatalf("take the move's lock: %v", err)
	}
	return func() {
		close(free)
		if err := <-done; err != nil {
			t.Fatalf("release the move's lock: %v", err)
		}
	}
}

// raceAdvance runs the command args twice at once, verbose, and lets
// them take the move's lock only once both have logged the phase they
// start from.
func raceAdvance(t *testing.T, db *dialect.DB, args ...string) (outs, errs [2]string, codes [2]int) {
	t.Helper()
	release := holdMoveLock(t, db, "price_cents")
	var wg sync.WaitGroup
	var outBufs [2]bytes.Buffer
	var errBufs [2]syncBuffer
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = run(context.Background(), append([]string{"-v"}, args...), &outBufs[i], &errBufs[i])
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(errBufs[0].String(), "starting from the phase read") || !strings.Contains(errBufs[1].String(), "starting from the phase read") {
		if time.Now().After(deadline) {
			release()
			wg.Wait()
			t.Fatalf("the commands never read the phase:\n%s\n%s", errBufs[0].String(), errBufs[1].String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	release()
	wg.Wait()
	for i := range outs {
		outs[i], errs[i] = outBufs[i].String(), errBufs[i].String()
	}
	return outs, errs, codes
}

type advanceReport struct {
	From     string  `json:"from"`
	To       string  `json:"to"`
	Done     bool    `json:"done"`
	Changed  bool    `json:"changed"`
	Already  bool    `json:"already"`
	Expected *string `json:"expected"`
}

// TestConcurrentAdvanceCommands runs two `tandem moves advance NAME` at
// once, 20 times per engine, with the next two gates open: each makes its
// decision before the other writes (the test holds the move's lock until
// both have read the phase they start from, the worst interleaving), and
// exactly one transition is recorded each time; the other command says
// another runner advanced the move and exits 0 having changed nothing.
func TestConcurrentAdvanceCommands(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(plan, []byte(testPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := dbtest.DSN(t, e.Name)
			ctx := context.Background()
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.MustExec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2))`)
			db.MustExec(`INSERT INTO products (id, price) VALUES (1, 1.50), (2, 2.25), (3, 3.00)`)
			mv := func(args ...string) (string, string, int) {
				return tandem(t, append([]string{"--db", dsn, "moves", "--plan", plan}, args...)...)
			}
			if _, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
				t.Fatal("schema ensure failed")
			}
			// No instance registered: read-new opens once verified, and
			// write-new right after it.
			for _, args := range [][]string{{"advance", "price_cents"}, {"backfill", "price_cents"}, {"verify", "price_cents"}} {
				if out, errOut, code := mv(args...); code != exitOK {
					t.Fatalf("%v: %d %s %s", args, code, out, errOut)
				}
			}
			history := func() int64 {
				var n int64
				if err := db.GetContext(ctx, &n, `SELECT COUNT(*) FROM tandem_move_history`); err != nil {
					t.Fatal(err)
				}
				return n
			}
			const tries = 20
			for try := range tries {
				before := history()
				outs, errs, codes := raceAdvance(t, db, "--json", "--db", dsn, "moves", "--plan", plan, "advance", "price_cents")
				var reps [2]advanceReport
				for i := range reps {
					if codes[i] != exitOK {
						t.Fatalf("try %d: command %d exit %d\n%s\n%s", try, i, codes[i], outs[i], errs[i])
					}
					if err := json.Unmarshal([]byte(outs[i]), &reps[i]); err != nil {
						t.Fatalf("try %d: %v\n%s", try, err, outs[i])
					}
				}
				if n := history(); n != before+1 {
					t.Fatalf("try %d: %d transitions recorded, want 1: %+v", try, n-before, reps)
				}
				changed, other := 0, 0
				for _, r := range reps {
					switch {
					case r.Changed && r.From == "write-both" && r.To == "read-new":
						changed++
					case !r.Changed && r.Already && r.Done && r.From == "read-new" && r.Expected != nil && *r.Expected == "write-both":
						other++
					}
				}
				if changed != 1 || other != 1 {
					t.Fatalf("try %d: %+v", try, reps)
				}
				if out, errOut, code := mv("advance", "price_cents", "--to", "write-both"); code != exitOK || !strings.Contains(out, "Advanced move price_cents from read-new to write-both") {
					t.Fatalf("try %d: rollback: %d %s %s", try, code, out, errOut)
				}
			}
			// The text a person reads.
			outs, errs, codes := raceAdvance(t, db, "--db", dsn, "moves", "--plan", plan, "advance", "price_cents")
			all := outs[0] + outs[1]
			if codes != [2]int{exitOK, exitOK} || strings.Count(all, "Advanced move price_cents from write-both to read-new") != 1 ||
				!strings.Contains(all, "Move price_cents is already at read-new: another runner advanced it from write-both while this one waited; nothing changed") {
				t.Fatalf("two advances: %v\n%s\n%s%s", codes, all, errs[0], errs[1])
			}
			// --to where the move stands: exit 0, nothing changed.
			before := history()
			out, errOut, code := mv("advance", "price_cents", "--to", "read-new")
			if code != exitOK || !strings.Contains(out, "Move price_cents is already at read-new; nothing changed") || history() != before {
				t.Fatalf("--to the current phase: %d %s %s", code, out, errOut)
			}
		})
	}
}
