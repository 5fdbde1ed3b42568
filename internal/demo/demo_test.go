package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// TestRun is the demo's CI requirement: a fast run on every engine, with
// and without chaos, ends with both moves contracted, nothing failed,
// nothing lost and no wrong read, and the timeline shows what happened.
func TestRun(t *testing.T) {
	for _, e := range dbtest.Engines {
		for _, chaos := range []bool{false, true} {
			name := string(e.Name)
			if chaos {
				name += "/chaos"
			}
			t.Run(name, func(t *testing.T) {
				dsn := dbtest.DSN(t, e.Name)
				if e.Name == dialect.SQLite {
					dsn = "" // the default: a file in a temporary directory
				}
				var out bytes.Buffer
				s, err := Run(context.Background(), Config{DSN: dsn, Fast: true, Chaos: chaos, Out: &out})
				if err != nil {
					t.Fatal(err)
				}
				s.WriteText(&out)
				if !s.OK() || s.Failed != 0 || s.LostWrites != 0 || s.WrongReads != 0 || s.GhostWrites != 0 || !s.Histories.Linearizable {
					t.Fatalf("summary not clean:\n%s", out.String())
				}
				// Every key whose last write was checked has its history
				// checked too, the final read from price_cents included.
				if h := s.Histories; int64(h.Keys) < s.WritesChecked || h.Operations <= h.Keys {
					t.Fatalf("histories %+v for %d keys checked:\n%s", h, s.WritesChecked, out.String())
				}
				if s.Engine != string(e.Name) || s.RPCRequests == 0 || s.DBRequests == 0 || s.WritesChecked == 0 || s.SeedsChecked == 0 || s.ReadsChecked == 0 {
					t.Fatalf("summary counted nothing:\n%s", out.String())
				}
				// One step ran under a write freeze: writes on the move
				// refused (not failures), its reads answered, none applied.
				if f := s.Freeze; f == nil || f.Move != itemsMove.Name || f.From != move.ReadNew || f.To != move.WriteNew ||
					f.RefusedWrites == 0 || f.Reads == 0 || f.AppliedWhileFrozen != 0 {
					t.Fatalf("freeze %+v:\n%s", s.Freeze, out.String())
				}
				for _, m := range s.Moves {
					if m.Phase != move.Contracted || len(m.Entered) != 4 {
						t.Fatalf("move %s: %s after %v\n%s", m.Name, m.Phase, m.Entered, out.String())
					}
				}
				// The trigger move contracts during release 42, the other
				// only after 44: the shortcut shows.
				if s.Moves[1].Entered[3].At >= s.Moves[0].Entered[2].At {
					t.Errorf("the move with triggers contracted at %s, after the other reached write-new at %s", s.Moves[1].Entered[3].At, s.Moves[0].Entered[2].At)
				}
				text := out.String()
				// With chaos an instance killed meanwhile may come back at
				// the next release itself, so the rollout finds it there.
				restarts := []string{"inventory-1 restarted: release 41 -> 42", "inventory-3 restarted: release 43 -> 44"}
				if chaos {
					restarts = nil
					if !regexp.MustCompile(`(restarted: release 4\d -> 44|back at release 44)`).MatchString(text) {
						t.Errorf("no instance reached release 44:\n%s", text)
					}
				}
				for _, want := range append(restarts,
					"floor 41 -> 42", "cap inventory 1.0 -> 1.1", "cap inventory 1.1 -> 1.2",
					"items_price_cents: phase write-both -> read-new", "blocked: waiting for",
					"backfill done", "verify:", "finalized at release 44", "drop column items.price",
					"drop the sync triggers", "result: OK", fmt.Sprintf("histories checked: %d keys, linearizable", s.Histories.Keys),
					"ghost writes 0  (of ", "items_price_cents: write freeze recorded", "items_price_cents: every instance acknowledged the freeze",
					"items_price_cents: thawed (tandem thaw --move items_price_cents)", "0 applied while frozen",
				) {
					if !strings.Contains(text, want) {
						t.Errorf("timeline lacks %q:\n%s", want, text)
					}
				}
				if chaos {
					if s.Kills == 0 || s.NATSRestarts != 1 || s.NATSInFlight == 0 {
						t.Errorf("chaos did %d kills and %d NATS restarts, with %d writes in flight", s.Kills, s.NATSRestarts, s.NATSInFlight)
					}
					if !strings.Contains(text, "without deregistering") || !strings.Contains(text, "NATS server back on port") {
						t.Errorf("timeline lacks the chaos:\n%s", text)
					}
				}
				if t.Failed() {
					return
				}
				t.Logf("%s: %d requests, %d retries, %d writes checked, %d histories (%d operations, %d writes of unknown outcome), %d ghost writes of %d failed, %s",
					name, s.Requests, s.Retries, s.WritesChecked, s.Histories.Keys, s.Histories.Operations, s.Histories.UnknownWrites, s.GhostWrites, s.FailedWrites, s.Elapsed.Round(time.Millisecond))
			})
		}
	}
}

// TestRunCatchesABuggyRelease makes sure the checks can fail: release 42
// reports write-both, as its tracker says, but writes the old column only.
// Either verify catches rows it wrote after the backfill passed them and
// read-new never opens, or readers of new see stale prices: both end in a
// failed summary, with lost writes or wrong reads.
func TestRunCatchesABuggyRelease(t *testing.T) {
	var out bytes.Buffer
	cfg := Config{Fast: true, Out: &out, Workers: 1,
		tune: func(s *settings) { s.deadline = time.Second; s.phaseWait = 4 * time.Second },
		fault: func(release int64, name string, p move.Phase) move.Phase {
			if release == 42 && name == itemsMove.Name && p == move.WriteBoth {
				return move.Legacy
			}
			return p
		}}
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteText(&out)
	caught := s.WrongReads+s.LostWrites > 0
	for _, p := range s.Problems {
		caught = caught || strings.Contains(p, "verify found")
	}
	if s.OK() || !caught {
		t.Fatalf("a release that skips writing new went unnoticed:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "result: FAILED") {
		t.Fatalf("summary does not say FAILED:\n%s", out.String())
	}
}

// TestRunCatchesWritesThroughAFreeze makes sure the freeze check can fail:
// a release that acknowledges the freeze but lets its writes through has
// them applied while every instance said it refused them, and the summary
// fails.
func TestRunCatchesWritesThroughAFreeze(t *testing.T) {
	var out bytes.Buffer
	s, err := Run(context.Background(), Config{Fast: true, Out: &out, ignoreFreeze: true})
	if err != nil {
		t.Fatal(err)
	}
	s.WriteText(&out)
	if s.OK() || s.Freeze == nil || s.Freeze.AppliedWhileFrozen == 0 || s.Freeze.RefusedWrites != 0 || !strings.Contains(out.String(), "result: FAILED") {
		t.Fatalf("writes through a freeze went unnoticed:\n%s", out.String())
	}
}

// TestRunCountsGhostWrites makes sure the ghost check can fail: a server
// that ignores its caller's deadline for two puts applies them after their
// callers saw them time out. Both are reported, with their times, and the
// summary fails; the histories stay linearizable (a write of unknown
// outcome may land late), which is why ghosts are counted apart. They are
// the only ghosts: the requests queued behind a held put count their
// callers' time from when they reached the server, so none of them runs
// after its caller gave up.
func TestRunCountsGhostWrites(t *testing.T) {
	var out bytes.Buffer
	cfg := Config{Fast: true, Out: &out,
		ghost: func(it *pb.Item) bool {
			return (it.GetId() == "rpc1-000" || it.GetId() == "rpc2-000") && valueOf(it).qty == 3
		}}
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteText(&out)
	text := out.String()
	if s.OK() || s.GhostWrites == 0 || !s.Histories.Linearizable || !strings.Contains(text, "result: FAILED") {
		t.Fatalf("ghost writes went unnoticed:\n%s", text)
	}
	// The two deliberate ghosts may land on one server: its endpoint then
	// runs the first while the second waits behind it, and rpcver rightly
	// drops the second unrun once its caller gave up. So one or both are
	// reported, each with its times, and no other.
	reported := 0
	for _, id := range []string{"items/rpc1-000", "items/rpc2-000"} {
		re := regexp.MustCompile(`ghost write: PutItem ` + id + ` quantity 3, sent at [0-9.]+s, failed for its caller at [0-9.]+s \(.*\), was applied by the server at [0-9.]+s`)
		if re.MatchString(text) {
			reported++
		}
	}
	if reported == 0 {
		t.Errorf("no deliberate ghost write reported:\n%s", text)
	}
	if !regexp.MustCompile(fmt.Sprintf(`ghost writes %d  \(of \d+ writes whose caller saw them fail`, reported)).MatchString(text) {
		t.Errorf("summary lacks the ghost count of %d:\n%s", reported, text)
	}
	var others []string
	for _, p := range s.Problems {
		if strings.HasPrefix(p, "ghost write: ") && !strings.Contains(p, "items/rpc1-000 quantity 3,") && !strings.Contains(p, "items/rpc2-000 quantity 3,") {
			others = append(others, p)
		}
	}
	if s.GhostWrites != int64(reported) || len(others) != 0 {
		t.Fatalf("%d ghost writes, want exactly the %d made on purpose and reported; the others:\n%s", s.GhostWrites, reported, strings.Join(others, "\n"))
	}
	t.Logf("exactly the %d ghost writes made on purpose; %d writes failed for their callers", reported, s.FailedWrites)
}

// TestRunCatchesStaleReadsInHistories makes sure the history check can
// fail in the demo: release 42 reports write-both but writes the new
// column only, so release 41 instances read stale prices. The histories
// of the keys it wrote are not linearizable, and the summary prints each
// failing key's smallest failing part (often one read alone: the name of
// one write with the price of an older one, a value no write wrote).
func TestRunCatchesStaleReadsInHistories(t *testing.T) {
	var out bytes.Buffer
	cfg := Config{Fast: true, Out: &out,
		tune: func(s *settings) { s.deadline = time.Second; s.phaseWait = 4 * time.Second },
		fault: func(release int64, name string, p move.Phase) move.Phase {
			if release == 42 && name == itemsMove.Name && p == move.WriteBoth {
				return move.WriteNew
			}
			return p
		}}
	s, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.WriteText(&out)
	text := out.String()
	h := s.Histories
	if s.OK() || h.Linearizable || len(h.Failures) == 0 || h.Keys == 0 {
		t.Fatalf("stale reads went unnoticed by the history check:\n%s", text)
	}
	f := h.Failures[0]
	if len(f.Minimal) == 0 || len(f.Minimal) >= f.Operations || f.Visualization == "" {
		t.Fatalf("failure %+v:\n%s", f, text)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(f.Visualization)) })
	if _, err := os.Stat(f.Visualization); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"histories checked: ", "NOT linearizable", "history of " + f.Key + " is not linearizable",
		"its smallest failing part", f.Minimal[0], "porcupine's partial linearizations: " + f.Visualization, "result: FAILED"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"one instance", Config{Instances: 1}, ErrConfig},
		{"too many clients", Config{Clients: 100}, ErrConfig},
		{"bad DSN", Config{DSN: "oracle://x"}, dialect.ErrBadDSN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Run(context.Background(), tt.cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// A SQLite file that already went through a demo is refused: the run must
// start from legacy.
func TestRunRefusesUsedSQLiteFile(t *testing.T) {
	dsn := dbtest.DSN(t, dialect.SQLite)
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.MustExec(`CREATE TABLE items (id TEXT PRIMARY KEY)`)
	db.Close()
	_, err = Run(context.Background(), Config{DSN: dsn, Fast: true})
	if !errors.Is(err, ErrNotEmpty) || !strings.Contains(err.Error(), "items") {
		t.Fatalf("got %v", err)
	}
}

// With Keep the database stays, and the printed status command needs no
// plan file: the ledger records the moves.
func TestRunKeep(t *testing.T) {
	var out bytes.Buffer
	s, err := Run(context.Background(), Config{Fast: true, Keep: true, Instances: 2, Clients: 1, Workers: 1, Out: &out})
	if err != nil || !s.OK() {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "TANDEM_PLAN") {
		t.Fatalf("the inspect line still names a plan:\n%s", out.String())
	}
	m := regexp.MustCompile(`inspect it: tandem --db '(sqlite://(\S+))' status\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no inspect line:\n%s", out.String())
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(strings.TrimPrefix(m[2], "//"))) })
	db, err := dialect.Open(context.Background(), m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mg, err := dualwrite.Load(context.Background(), db, nil)
	if err != nil || len(mg.Moves()) != 2 {
		t.Fatalf("moves from the ledger alone: %v", err)
	}
	if p, err := mg.Phase(context.Background(), itemsMove.Name); err != nil || p != move.Contracted {
		t.Fatalf("kept database: %s, %v", p, err)
	}
}
