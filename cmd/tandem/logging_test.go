package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/services"
)

func TestLogFormatRefused(t *testing.T) {
	for _, tc := range []struct {
		name, env string
		args      []string
		want      string
	}{
		{"flag", "", []string{"--log-format", "yaml", "status"}, "--log-format yaml: want text or json"},
		{"env", "xml", []string{"status"}, "TANDEM_LOG_FORMAT=xml: want text or json"},
		{"case matters", "", []string{"--log-format", "JSON", "version"}, "--log-format JSON: want text or json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TANDEM_LOG_FORMAT", tc.env)
			// The database does not exist: the flag is refused before
			// anything is opened.
			out, errOut, code := tandem(t, append([]string{"--db", filepath.Join(t.TempDir(), "none.db")}, tc.args...)...)
			if code != exitBadInput || out != "" || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

// TestVerboseLogsEachStep checks that -v logs a line per gate check, per
// DDL step and per backfill batch, as JSON lines on stderr with
// --log-format json, while stdout keeps the results.
func TestVerboseLogsEachStep(t *testing.T) {
	dsn, plan, db := productsFixture(t, dialect.SQLite)
	ctx := context.Background()
	for i := 1; i <= 50; i++ {
		db.MustExec(fmt.Sprintf(`INSERT INTO products (id, price) VALUES (%d, %d.25)`, i, i))
	}
	if _, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
		t.Fatal("schema ensure failed")
	}
	logs := func(errOut string) map[string]int {
		t.Helper()
		n := map[string]int{}
		for _, l := range strings.Split(strings.TrimSpace(errOut), "\n") {
			var rec struct {
				Msg   string `json:"msg"`
				Level string `json:"level"`
			}
			if err := json.Unmarshal([]byte(l), &rec); err != nil || rec.Msg == "" {
				t.Fatalf("stderr line %q is not a JSON log record: %v", l, err)
			}
			n[rec.Msg]++
		}
		return n
	}
	v := func(args ...string) (string, map[string]int) {
		t.Helper()
		out, errOut, code := tandem(t, append([]string{"--db", dsn, "-v", "--log-format", "json", "moves", "--plan", plan}, args...)...)
		if code != exitOK {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out, logs(errOut)
	}
	out, n := v("advance", "price_cents")
	if !strings.HasPrefix(out, "Advanced move price_cents from legacy to write-both") || n["dualwrite: gate checked"] != 1 || n["dualwrite: step applied"] < 1 {
		t.Fatalf("advance: %q, logged %v", out, n)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(ctx, services.Instance{ID: "web-1", Service: "shop", Release: 7, Phases: map[string]string{"price_cents": "write-both"}}); err != nil {
		t.Fatal(err)
	}
	out, n = v("backfill", "price_cents", "--batch", "10", "--target-batch-time", "1ns")
	if !strings.HasPrefix(out, "Backfill of price_cents complete: 50 rows this run") || n["dualwrite: batch done"] != 5 {
		t.Fatalf("backfill: %q, logged %v", out, n)
	}
	// Without -v, progress goes to stderr (a line, stderr not being a
	// terminal) and stdout carries the result alone.
	out, errOut, code := tandem(t, "--db", dsn, "moves", "--plan", plan, "backfill", "price_cents", "--restart", "--batch", "10", "--target-batch-time", "1ns")
	if code != exitOK || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "Backfill of price_cents complete: 50 rows this run, 50 of 50 in all") ||
		!strings.HasPrefix(errOut, "backfill price_cents: 20.0%, 10 of 50 rows") {
		t.Fatalf("backfill: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// Text is the default form.
	_, errOut, code = tandem(t, "--db", dsn, "-v", "moves", "--plan", plan, "advance", "price_cents", "--dry-run")
	if code != exitAttention || !strings.Contains(errOut, `level=DEBUG msg="dualwrite: gate checked" move=price_cents from=write-both to=read-new open=false blockers=[verify]`) {
		t.Fatalf("dry run: exit %d\n%s", code, errOut)
	}
}
