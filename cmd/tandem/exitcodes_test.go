package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// TestExitCodes produces every documented exit code with a real command
// line, in text and with --json (where the error object on stderr must
// carry the same exit and its code).
func TestExitCodes(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	t.Setenv("TANDEM_NATS", "")
	e := dbtest.Engines[0] // SQLite: the engine-specific paths are in TestJSONGolden
	cases := []struct {
		exit int
		code string // the JSON error code
		name string
		// setup prepares the database and returns the command line.
		setup func(t *testing.T, dsn string, db *dialect.DB, plan string) []string
	}{
		{exitOK, "", "status with nothing to do", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "status"}
		}},
		{exitFailed, codeFailed, "a registry table that is not tandem's", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			db.MustExec(`ALTER TABLE tandem_services RENAME TO tandem_services_old`)
			db.MustExec(`CREATE TABLE tandem_services (id TEXT)`)
			return []string{"--db", dsn, "services", "list"}
		}},
		{exitBadInput, codeUnknownCommand, "an unknown command", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "frobnicate"}
		}},
		{exitBadInput, codeUnknownCommand, "an unknown subcommand", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "moves", "frobnicate"}
		}},
		{exitBadInput, codeUnknownCommand, "an unknown subcommand asked for help", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "moves", "frobnicate", "--help"}
		}},
		{exitBadInput, codeUnknownCommand, "help for an unknown command", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "help", "moves", "frobnicate"}
		}},
		{exitBadInput, codeBadInput, "an unknown move", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "moves", "advance", "nosuch"}
		}},
		{exitBadInput, codeRefused, "a rollback after finalize", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			finalized(t, dsn, db, plan)
			return []string{"--db", dsn, "moves", "advance", "cents", "--to", "read-new"}
		}},
		{exitBlocked, codeBlocked, "an instance still rolling", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			must(t, exitOK, "--db", dsn, "--plan", plan, "moves", "advance", "cents")
			registerAt(t, db, "web-1", "legacy", time.Now())
			return []string{"--db", dsn, "moves", "backfill", "cents"}
		}},
		{exitUnreachable, codeDBUnreachable, "the database down", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", "postgres://tandem@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", "status"}
		}},
		{exitUnreachable, codeNATSUnreachable, "NATS down", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			return []string{"--db", dsn, "--nats", "nats://127.0.0.1:1", "services", "list"}
		}},
		{exitAttention, codeAttention, "a missing instance", func(t *testing.T, dsn string, db *dialect.DB, plan string) []string {
			registerAt(t, db, "web-1", "legacy", time.Now().Add(-10*time.Minute))
			return []string{"--db", dsn, "status"}
		}},
	}
	seen := map[int]bool{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, asJSON := range []bool{false, true} {
				dsn, db := ledgerDB(t, e)
				plan := writeFile(t, "plan.yaml", statusPlan)
				args := tc.setup(t, dsn, db, plan)
				if asJSON {
					args = append([]string{"--json"}, args...)
				}
				out, errOut, code := tandem(t, args...)
				if code != tc.exit {
					t.Fatalf("tandem %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, tc.exit, out, errOut)
				}
				if asJSON && code != exitOK {
					checkErrorObject(t, errOut, tc.exit, tc.code)
				}
			}
			seen[tc.exit] = true
		})
	}
	t.Run("interrupted", func(t *testing.T) {
		testInterrupted(t, e)
		seen[exitInterrupted] = true
	})
	for _, c := range exitCodes {
		if !seen[c.Code] {
			t.Errorf("exit code %d (%s) is documented but no command line produced it", c.Code, c.Name)
		}
	}
}

func checkErrorObject(t *testing.T, errOut string, exit int, code string) {
	t.Helper()
	var obj struct {
		Schema  string `json:"schema"`
		Code    string `json:"code"`
		Exit    int    `json:"exit"`
		Message string `json:"message"`
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 1 {
		t.Fatalf("stderr is not one line:\n%s", errOut)
	}
	if err := json.Unmarshal([]byte(lines[0]), &obj); err != nil || obj.Schema != jsonSchema || obj.Exit != exit || obj.Code != code || obj.Message == "" {
		t.Fatalf("error object %s (%v), want exit %d code %q", lines[0], err, exit, code)
	}
}

// registerAt registers an instance of release 1 acting on phase for the
// move cents, last heard from at at.
func registerAt(t *testing.T, db *dialect.DB, id, phase string, at time.Time) {
	t.Helper()
	reg, err := services.New(context.Background(), db, services.WithClock(func() time.Time { return at }))
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(context.Background(), services.Instance{ID: id, Service: "shop", Host: "h-" + id, Release: 1, Phases: map[string]string{"cents": phase}}); err != nil {
		t.Fatal(err)
	}
}

// finalized carries the move cents to write-new and finalizes it.
func finalized(t *testing.T, dsn string, db *dialect.DB, plan string) {
	t.Helper()
	mv := func(args ...string) {
		must(t, exitOK, append([]string{"--db", dsn, "--plan", plan, "moves"}, args...)...)
	}
	mv("advance", "cents")
	mv("backfill", "cents")
	mv("verify", "cents")
	for _, to := range []string{"read-new", "write-new"} {
		mv("advance", "cents", "--to", to)
	}
	registerAt(t, db, "web-1", "write-new", time.Now())
	mv("finalize", "cents", "--yes")
}

// testInterrupted sends SIGINT to a backfill running in a child process:
// it exits 130 with the "interrupted" error object, keeps its cursor, and
// status then names the backfill to run again (exit 5).
func testInterrupted(t *testing.T, e dbtest.Engine) {
	dsn, db := ledgerDB(t, e)
	plan := writeFile(t, "plan.yaml", statusPlan)
	for i := 4; i <= 1000; i++ {
		db.MustExec(db.Rebind(`INSERT INTO products (id, price, label, note) VALUES (?, 1.25, 'l', 'n')`), i)
	}
	must(t, exitOK, "--db", dsn, "--plan", plan, "moves", "advance", "cents")
	cmd := exec.Command(os.Args[0], "-test.run=^TestTandemChild$")
	cmd.Env = append(os.Environ(), "TANDEM_CHILD_ARGS="+strings.Join([]string{"--db", dsn, "--json", "moves", "--plan", plan, "backfill", "cents", "--batch", "100", "--target-batch-time", "1ns", "--rate", "200"}, "\x1f"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if strings.Contains(lines.Text(), `"event":"progress"`) {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() {
	}
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code != exitInterrupted {
		t.Fatalf("backfill after SIGINT: exit %d (%v), want %d\n%s", code, err, exitInterrupted, stderr.String())
	}
	// TestTandemChild's own "PASS" lines are not the command's: the error
	// object is the line that starts with {.
	var obj string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.HasPrefix(l, "{") {
			obj = l
		}
	}
	checkErrorObject(t, obj, exitInterrupted, codeInterrupted)
	out, _, code := tandem(t, "--json", "--db", dsn, "status")
	var st statusReportJSON
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitAttention {
		t.Fatalf("status after the interrupt: exit %d %v\n%s", code, err, out)
	}
	if got := strings.Join(st.blocked(), "\n"); !strings.Contains(got, "=> tandem moves backfill cents") {
		t.Fatalf("status after the interrupt does not name the backfill to resume:\n%s", got)
	}
}

// TestExitCodeTables checks that the README, the runbook and
// docs/cli-json.md carry the table exitcodes.go documents: the same codes
// with the same names.
func TestExitCodeTables(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| *`?(\\d+)`? *\\| *([a-z ]+?) *\\|")
	for _, path := range []string{"../../README.md", "../../docs/runbook.md", "../../docs/cli-json.md"} {
		body, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]string{}
		for _, m := range row.FindAllStringSubmatch(string(body), -1) {
			n, _ := strconv.Atoi(m[1])
			got[n] = m[2]
		}
		var missing []string
		for _, c := range exitCodes {
			if got[c.Code] != c.Name {
				missing = append(missing, fmt.Sprintf("%d %s (found %q)", c.Code, c.Name, got[c.Code]))
			}
			delete(got, c.Code)
		}
		if len(missing) > 0 || len(got) > 0 {
			extra := []int{}
			for n := range got {
				extra = append(extra, n)
			}
			slices.Sort(extra)
			t.Errorf("%s: the exit-code table lacks %v, or has codes tandem does not use: %v", path, missing, extra)
		}
	}
}

// A server that refuses the login is bad input (exit 2), not unreachable:
// no wait makes a wrong password right.
func TestRefusedLoginExitsBadInput(t *testing.T) {
	base := os.Getenv("TANDEM_TEST_MYSQL")
	if base == "" {
		t.Skipf("%s: TANDEM_TEST_MYSQL not set", dbtest.SkipMarker)
	}
	dsn := strings.Replace(base, "mysql://root@", "mysql://root:hunter2-wrong@", 1)
	if dsn == base {
		t.Skip("TANDEM_TEST_MYSQL is not root without a password; nothing to make wrong")
	}
	out, errOut, code := tandem(t, "--db", dsn, "--json", "status")
	if code != exitBadInput {
		t.Fatalf("exit %d, want %d\n%s%s", code, exitBadInput, out, errOut)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(errOut), &e); err != nil || e.Code != codeLoginRefused {
		t.Fatalf("stderr %q: want code %s (%v)", errOut, codeLoginRefused, err)
	}
	if strings.Contains(out+errOut, "hunter2") {
		t.Fatalf("password shown: %s", errOut)
	}
}
