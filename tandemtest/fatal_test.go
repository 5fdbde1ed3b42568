package tandemtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/tandemtest"
)

// failingCase runs in a child test process: its new release's code fails
// at write-both, by t.Fatal or by a panic, on Run's goroutines.
func TestFailingCodeChild(t *testing.T) {
	how := os.Getenv("TANDEMTEST_CHILD")
	if how == "" {
		t.Skip("run by TestFailingCodeStopsTheWalk")
	}
	db := dbtest.Open(t, dialect.SQLite)
	m := move.Move{Name: "display_name", Table: "users", Key: []string{"id"}, Old: "fullname",
		New: move.Target{Column: "display_name", Type: move.ColumnType{SQL: "VARCHAR(200)"}}}
	tandemtest.Run(t, db, tandemtest.Case{
		Move: m,
		Setup: func(ctx context.Context, t testing.TB, db *dialect.DB) {
			db.MustExec(`CREATE TABLE users (id BIGINT PRIMARY KEY, fullname VARCHAR(200))`)
		},
		New: func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
			if p != move.WriteBoth {
				return
			}
			if _, ok := t.(*testing.T); ok {
				t.Error("Code got the test's own *testing.T, whose Fatal is invalid on Run's goroutines")
			}
			switch how {
			case "fatal":
				t.Fatalf("new code fails at %s", p)
			case "panic":
				panic("new code panics at " + p.String())
			}
			t.Error("still running after Fatal")
		},
		Check: func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
			t.Logf("boundary to %s checked", p)
		},
	})
}

func TestFailingCodeStopsTheWalk(t *testing.T) {
	for _, tt := range []struct{ how, want string }{
		{"fatal", "new code fails at write-both"},
		{"panic", "new release's code acting on write-both panicked: new code panics at write-both"},
	} {
		t.Run(tt.how, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFailingCodeChild$", "-test.v")
			cmd.Env = append(os.Environ(), "TANDEMTEST_CHILD="+tt.how)
			out, err := cmd.CombinedOutput()
			text := string(out)
			if err == nil || !strings.Contains(text, "--- FAIL: TestFailingCodeChild") {
				t.Fatalf("the child test did not fail (%v):\n%s", err, text)
			}
			for _, want := range []string{
				tt.want,
				"tandemtest: legacy -> write-both: stopped before the next boundary: the release code failed",
			} {
				if !strings.Contains(text, want) {
					t.Errorf("output lacks %q:\n%s", want, text)
				}
			}
			for _, bad := range []string{"still running after Fatal", "got the test's own", "boundary to read-new", "panic: "} {
				if strings.Contains(text, bad) {
					t.Errorf("output has %q:\n%s", bad, text)
				}
			}
		})
	}
}
