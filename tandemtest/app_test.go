package tandemtest_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/tandemtest"
)

var displayName = move.Move{Name: "display_name", Table: "users", Key: []string{"id"}, Old: "fullname",
	New:      move.Target{Column: "display_name", Type: move.ColumnType{SQL: "VARCHAR(200)"}},
	Releases: move.Releases{WriteBoth: 2, ReadNew: 3, WriteNew: 4, Contracted: 4}}

func createUsers(ctx context.Context, t testing.TB, db *dialect.DB) {
	db.MustExec(`CREATE TABLE users (id BIGINT PRIMARY KEY, fullname VARCHAR(200))`)
	db.MustExec(`INSERT INTO users (id, fullname) VALUES (1, 'Ada'), (2, 'Grace')`)
}

// The application's wiring: each operation takes its phase from the
// tracker and ends it after the commit, and both releases write row 1.
func TestRunExercisesTheTrackerWiring(t *testing.T) {
	tandemtest.ForEachEngine(t, func(t *testing.T, db *dialect.DB) {
		r, err := dualwrite.NewRouter(displayName, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		var n atomic.Int64
		written := map[string]bool{"Ada": true}
		var seen atomic.Int64
		app := func(ctx context.Context, t testing.TB, db *dialect.DB, tr *dualwrite.Tracker) tandemtest.Code {
			return func(ctx context.Context, t testing.TB, db *dialect.DB, phase move.Phase) {
				p, done := tr.Begin(displayName.Name)
				defer done()
				if p < phase {
					t.Errorf("the tracker acts on %s where the walk expects %s at least", p, phase)
				}
				v := fmt.Sprintf("v%d", n.Add(1))
				tx, err := db.BeginTxx(ctx, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
				if err := r.Write(ctx, tx, p, v, 1); err != nil {
					t.Fatalf("write at %s: %v", p, err)
				}
				if got, err := r.Read(ctx, tx, p, 1); err != nil || got != v {
					t.Fatalf("read at %s in the writing transaction: %v (%v), want %s", p, got, err, v)
				}
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
				seen.Add(1)
			}
		}
		bs := tandemtest.Run(t, db, tandemtest.Case{
			Move: displayName, Setup: createUsers, App: app,
			Check: func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
				got, err := r.Read(ctx, db, p, 1)
				if s, ok := got.(string); err != nil || !ok || (!written[s] && !strings.HasPrefix(s, "v")) {
					t.Errorf("row 1 at %s reads %v (%v)", p, got, err)
				}
				if got, err := r.Read(ctx, db, p, 2); err != nil || got != "Grace" {
					t.Errorf("untouched row 2 at %s reads %v (%v)", p, got, err)
				}
			},
		})
		if len(bs) != 4 || bs[3].To != move.Contracted {
			t.Fatalf("walked %+v", bs)
		}
		// Each boundary: at least Rounds calls per side after the
		// transition, from both releases, all on row 1.
		if seen.Load() < 4*2*3 {
			t.Fatalf("%d operations committed over 4 boundaries", seen.Load())
		}
	})
}

// TestLeakedOperationChild runs in a child process: the application's code
// begins an operation and never ends it.
func TestLeakedOperationChild(t *testing.T) {
	if os.Getenv("TANDEMTEST_LEAK_CHILD") == "" {
		t.Skip("run by TestRunFailsAnOperationNeverEnded")
	}
	db := tandemtest.Open(t, dialect.SQLite)
	tandemtest.Run(t, db, tandemtest.Case{
		Move: displayName, Setup: createUsers,
		App: func(ctx context.Context, t testing.TB, db *dialect.DB, tr *dualwrite.Tracker) tandemtest.Code {
			return func(ctx context.Context, t testing.TB, db *dialect.DB, phase move.Phase) {
				_, _ = tr.Begin(displayName.Name) // the bug: done is never called
			}
		},
	})
}

func TestRunFailsAnOperationNeverEnded(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestLeakedOperationChild$", "-test.v")
	cmd.Env = append(os.Environ(), "TANDEMTEST_LEAK_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--- FAIL: TestLeakedOperationChild") {
		t.Fatalf("the child test did not fail (%v):\n%s", err, out)
	}
	if want := "code began an operation (tracker.Begin) and never called its done"; !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}
