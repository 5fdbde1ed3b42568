package sqldialect_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

func TestRunnerLockExclusive(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		held := func(want bool) {
			t.Helper()
			got, err := sqldialect.RunnerLockHeld(ctx, db, "m1")
			if err != nil || got != want {
				t.Fatalf("held: %v %v, want %v", got, err, want)
			}
		}
		held(false)
		a, err := sqldialect.TryRunnerLock(ctx, db, "m1")
		if err != nil {
			t.Fatal(err)
		}
		held(true)
		if _, err := sqldialect.TryRunnerLock(ctx, db, "m1"); !errors.Is(err, sqldialect.ErrHeld) {
			t.Fatalf("second holder: %v", err)
		}
		other, err := sqldialect.TryRunnerLock(ctx, db, "m2")
		if err != nil {
			t.Fatalf("another key: %v", err)
		}
		if err := other.Release(ctx); err != nil {
			t.Fatal(err)
		}
		held(true)
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if err := a.Release(ctx); err != nil {
			t.Fatalf("second release: %v", err)
		}
		held(false)
		b, err := sqldialect.TryRunnerLock(ctx, db, "m1")
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		_ = b.Release(ctx)
	})
}

// TestRunnerLockDiesWithHolder: a process holding the lock is killed with
// SIGKILL; the lock is free again at once, with no lease to run out.
func TestRunnerLockDiesWithHolder(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := dbtest.DSN(t, e.Name)
			ctx := context.Background()
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRunnerLockChild$")
			cmd.Env = append(os.Environ(), "TANDEM_RUNNER_LOCK_CHILD="+dsn)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			lines := bufio.NewScanner(out)
			for lines.Scan() && !strings.HasPrefix(lines.Text(), "locked") {
			}
			if held, err := sqldialect.RunnerLockHeld(ctx, db, "m1"); err != nil || !held {
				t.Fatalf("child holds it: %v %v", held, err)
			}
			if _, err := sqldialect.TryRunnerLock(ctx, db, "m1"); !errors.Is(err, sqldialect.ErrHeld) {
				t.Fatalf("while the child lives: %v", err)
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killed := time.Now()
			for {
				l, err := sqldialect.TryRunnerLock(ctx, db, "m1")
				if err == nil {
					t.Logf("%s: lock free %s after SIGKILL", e.Name, time.Since(killed).Round(time.Millisecond))
					_ = l.Release(ctx)
					return
				}
				if !errors.Is(err, sqldialect.ErrHeld) || time.Since(killed) > 5*time.Second {
					t.Fatalf("%s after SIGKILL: %v", time.Since(killed), err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestRunnerLockChild is the child process of TestRunnerLockDiesWithHolder.
func TestRunnerLockChild(t *testing.T) {
	dsn := os.Getenv("TANDEM_RUNNER_LOCK_CHILD")
	if dsn == "" {
		t.Skip("child process of TestRunnerLockDiesWithHolder")
	}
	ctx := context.Background()
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sqldialect.TryRunnerLock(ctx, db, "m1"); err != nil {
		t.Fatal(err)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute) // until killed
}
