package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// completions runs `tandem __complete ARGS...` (what a shell's completion
// script runs at each TAB) and returns the candidates and the directive.
func completions(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	out, errOut, code := tandem(t, append([]string{"__complete"}, args...)...)
	if code != exitOK {
		t.Fatalf("__complete %v: exit %d\n%s%s", args, code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[:len(lines)-1], lines[len(lines)-1]
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		out, errOut, code := tandem(t, "completion", shell)
		if code != exitOK || !strings.Contains(out, "tandem") || len(out) < 1000 {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", shell, code, len(out), errOut)
		}
	}
	if _, _, code := tandem(t, "completion", "tcsh"); code != exitBadInput {
		t.Errorf("completion tcsh: exit %d, want %d", code, exitBadInput)
	}
}

// TestCompletionReadsOnly completes move names from the ledger, phases,
// engines and instance ids from the registry, on every engine, and checks
// that completing changed nothing in the database.
func TestCompletionReadsOnly(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, plan, db := productsFixture(t, e.Name)
			ctx := context.Background()
			if _, _, code := tandem(t, "--db", dsn, "schema", "ensure"); code != exitOK {
				t.Fatal("schema ensure failed")
			}
			if out, errOut, code := tandem(t, "--db", dsn, "moves", "--plan", plan, "apply"); code != exitOK {
				t.Fatalf("apply: %d %s %s", code, out, errOut)
			}
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"web-1", "web-2", "gone-1"} {
				if err := reg.Register(ctx, services.Instance{ID: id, Service: "shop", Release: 7}); err != nil {
					t.Fatal(err)
				}
			}
			if err := reg.Delete(ctx, "gone-1"); err != nil {
				t.Fatal(err)
			}
			before := dbtest.Dump(t, db)
			// No plan on these command lines: the move comes from the ledger.
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"--db", dsn, "moves", "advance", ""}, "price_cents"},
				{[]string{"--db", dsn, "moves", "backfill", "pr"}, "price_cents"},
				{[]string{"--db", dsn, "moves", "advance", "x"}, ""},
				{[]string{"--db", dsn, "moves", "advance", "price_cents", ""}, ""},
				{[]string{"--db", dsn, "triggers", "check", ""}, "price_cents"},
				{[]string{"--db", dsn, "moves", "advance", "price_cents", "--to", "write-"}, "write-both write-new"},
				{[]string{"--db", dsn, "moves", "sql", "price_cents", "--phase", ""}, "legacy write-both read-new write-new contracted"},
				{[]string{"--db", dsn, "moves", "sql", "price_cents", "--dialect", ""}, "sqlite postgres mysql"},
				{[]string{"--db", dsn, "services", "delete", ""}, "web-1 web-2"},
				{[]string{"--db", dsn, "services", "delete", "web-2"}, "web-2"},
				{[]string{"--log-format", ""}, "text json"},
				{[]string{"--db", dsn, "wait", "--move", ""}, "price_cents"},
				{[]string{"--db", dsn, "wait", "--move", "price_cents", "--phase", "re"}, "read-new"},
			} {
				got, directive := completions(t, tc.args...)
				if strings.Join(got, " ") != tc.want || directive != ":4" {
					t.Errorf("__complete %v:\n got %q %s\nwant %q :4 (no file completion)", tc.args[2:], got, directive, tc.want)
				}
			}
			if after := dbtest.Dump(t, db); after != before {
				t.Fatalf("completion changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	t.Run("no database", func(t *testing.T) {
		// A --db naming a missing SQLite file completes nothing and
		// creates nothing.
		path := filepath.Join(t.TempDir(), "typo.db")
		if got, _ := completions(t, "--db", path, "moves", "advance", ""); len(got) != 0 {
			t.Errorf("completions without a database: %q", got)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("completion created %s: %v", path, err)
		}
	})
}
