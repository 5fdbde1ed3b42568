package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// TestBackfillKilledResumesAtOnce runs `tandem moves backfill` as a real
// child process (this test binary, re-executed), rate-limited so that it is
// mid-run, and on every engine:
//   - a second backfill and a verify beside the live one are refused with
//     exit 3, naming its host, pid and start; status shows it running and
//     does not tell anyone to run the backfill;
//   - after SIGKILL, status says the runner is gone and a rerun resumes at
//     once; the rerun, started at once, resumes from the cursor within 5 s
//     and finishes; verify finds 0 mismatches.
func TestBackfillKilledResumesAtOnce(t *testing.T) {
	const rows = 20000
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
			for lo := 1; lo <= rows; lo += 1000 {
				var sb strings.Builder
				for i := lo; i < lo+1000; i++ {
					if i > lo {
						sb.WriteString(", ")
					}
					fmt.Fprintf(&sb, "(%d, %d.%02d)", i, i%1000, i%100)
				}
				db.MustExec(`INSERT INTO products (id, price) VALUES ` + sb.String())
			}
			mv := func(args ...string) (string, string, int) {
				return tandem(t, append([]string{"--db", dsn, "moves", "--plan", plan}, args...)...)
			}
			if _, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
				t.Fatal("schema ensure failed")
			}
			if out, errOut, code := mv("advance", "price_cents"); code != exitOK {
				t.Fatalf("advance: %d %s %s", code, out, errOut)
			}
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 7, Phases: map[string]string{"price_cents": "write-both"}}); err != nil {
				t.Fatal(err)
			}

			// The child: batches of 100 rows (the least; a target of 1ns keeps them
			// there) at 1,000 rows/s, twenty seconds in all.
			cmd := exec.Command(os.Args[0], "-test.run=^TestTandemChild$")
			cmd.Env = append(os.Environ(), "TANDEM_CHILD_ARGS="+strings.Join([]string{"--db", dsn, "--json", "moves", "--plan", plan, "backfill", "price_cents", "--batch", "100", "--target-batch-time", "1ns", "--rate", "1000"}, "\x1f"))
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			pid := strconv.Itoa(cmd.Process.Pid)
			lines := bufio.NewScanner(stdout)
			for batches := 0; batches < 5; {
				if !lines.Scan() {
					t.Fatalf("the child ended before its fifth batch: %v", lines.Err())
				}
				if strings.Contains(lines.Text(), `"op":"backfill"`) {
					batches++
				}
			}
			go func() { // keep the pipe drained
				for lines.Scan() {
				}
			}()

			// Two live runners: the second is refused, the holder named.
			for _, args := range [][]string{{"backfill", "price_cents"}, {"verify", "price_cents"}} {
				out, errOut, code := mv(args...)
				if code != exitBlocked || !strings.Contains(out, "pid "+pid) || !strings.Contains(out, "a backfill is running") || !strings.Contains(out, "since ") {
					t.Fatalf("%s beside a live backfill: exit %d\n%s%s", args[0], code, out, errOut)
				}
			}
			t.Setenv("TANDEM_PLAN", plan)
			out, _, _ := tandem(t, "--db", dsn, "status")
			if !strings.Contains(out, "runner: backfill is running on host") || !strings.Contains(out, "pid "+pid) || strings.Contains(out, "to resume it") || strings.Contains(out, "resumes from the cursor") {
				t.Fatalf("status while the backfill runs:\n%s", out)
			}
			out, _, _ = mv("list", "--json")
			if !strings.Contains(out, `"pid": `+pid) || !strings.Contains(out, `"alive": true`) {
				t.Fatalf("moves list --json while the backfill runs:\n%s", out)
			}

			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			killed := time.Now()
			out, _, _ = tandem(t, "--db", dsn, "status")
			if !strings.Contains(out, "pid "+pid) || !strings.Contains(out, "is gone without finishing: tandem moves backfill price_cents resumes from the cursor at once") || !strings.Contains(out, "its runner (backfill on host") {
				t.Fatalf("status after the kill:\n%s", out)
			}
			var before struct {
				Moves []struct {
					Backfill struct {
						RowsDone int64 `json:"rows_done"`
					} `json:"backfill"`
				} `json:"moves"`
			}
			out, _, _ = mv("list", "--json")
			if err := json.Unmarshal([]byte(out), &before); err != nil || len(before.Moves) != 1 {
				t.Fatalf("moves list --json: %v\n%s", err, out)
			}
			done := before.Moves[0].Backfill.RowsDone
			if done <= 0 || done >= rows {
				t.Fatalf("killed mid-run, yet %d of %d rows done", done, rows)
			}

			// Rerun: taken over at once (not refused), it resumes from the
			// cursor, its first batch done within 5 s (the checks above,
			// which ran after the kill, are not counted), and finishes.
			checks := time.Since(killed)
			started := time.Now()
			out, errOut, code := tandem(t, "--db", dsn, "--json", "moves", "--plan", plan, "backfill", "price_cents")
			if code != exitOK {
				t.Fatalf("rerun after the kill: exit %d\n%s%s", code, out, errOut)
			}
			type counts struct {
				Elapsed  time.Duration `json:"elapsed_ns"`
				Done     int64         `json:"done"`
				Rows     int64         `json:"rows"`
				Resumed  bool          `json:"resumed"`
				Complete bool          `json:"complete"`
			}
			var first counts
			var result struct {
				Event    string `json:"event"`
				Outcome  string `json:"outcome"`
				Backfill counts `json:"backfill"`
			}
			evs := strings.Split(strings.TrimSpace(out), "\n")
			if err := json.Unmarshal([]byte(evs[0]), &first); err != nil {
				t.Fatalf("first event %q: %v", evs[0], err)
			}
			if err := json.Unmarshal([]byte(evs[len(evs)-1]), &result); err != nil || result.Event != "result" || result.Outcome != "done" {
				t.Fatalf("result: %v\n%s", err, out)
			}
			last := result.Backfill
			if took := started.Sub(killed) - checks + first.Elapsed; took > 5*time.Second {
				t.Fatalf("the rerun's first batch ended %s after it started", took)
			} else {
				t.Logf("%s: killed at %d of %d rows; the checks after the kill took %s; the rerun's first batch was done %s after it started", e.Name, done, rows, checks.Round(time.Millisecond), took.Round(time.Millisecond))
			}
			if !last.Resumed || !last.Complete || last.Done != rows || last.Rows != rows-done || first.Done <= done {
				t.Fatalf("rerun: first event %+v, result %+v, %d rows done before", first, last, done)
			}
			if out, _, code := mv("verify", "price_cents"); code != exitOK || !strings.Contains(out, fmt.Sprintf("%s rows checked, 0 mismatch(es)", humanize.Comma(rows))) {
				t.Fatalf("verify after the rerun: %d %s", code, out)
			}
			if out, _, _ := tandem(t, "--db", dsn, "status"); strings.Contains(out, "runner:") {
				t.Fatalf("status after the rerun still shows a runner:\n%s", out)
			}
		})
	}
}

// TestTandemChild runs the CLI with the arguments in TANDEM_CHILD_ARGS
// (separated by \x1f) and exits with its code: the child process of the
// tests that kill a running command.
func TestTandemChild(t *testing.T) {
	args := os.Getenv("TANDEM_CHILD_ARGS")
	if args == "" {
		t.Skip("child process of TestBackfillKilledResumesAtOnce")
	}
	// As main does: SIGINT and SIGTERM cancel the run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, strings.Split(args, "\x1f"), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
