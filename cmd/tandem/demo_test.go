package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// The demo as a new user runs it, in fast mode: a timeline, a clean
// summary and exit 0. Every engine, and chaos, are covered by the demo
// package's own tests.
func TestDemoCommand(t *testing.T) {
	out, errOut, code := tandem(t, "demo", "--fast")
	if code != exitOK {
		t.Fatalf("demo --fast: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"inventory-2 restarted: release 42 -> 43", "items_price_cents: phase write-new -> contracted",
		"requests failed        0", "lost writes            0", "wrong reads            0", "histories checked: ", " keys, linearizable",
		"ghost writes 0  (of ", "result: OK",
		"items_price_cents: write freeze recorded", "items_price_cents: every instance acknowledged the freeze", "items_price_cents: thawed",
		"refused with dualwrite.ErrFrozen, not failures, while items_price_cents went read-new -> write-new under a write freeze", "0 applied while frozen"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestDemoCommandJSON(t *testing.T) {
	out, errOut, code := tandem(t, "demo", "--fast", "--json", "--instances", "2", "--clients", "1", "--workers", "1")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	var s struct {
		Engine      string
		Requests    int64
		Failed      int64
		WrongReads  int64 `json:"wrong_reads"`
		LostWrites  int64 `json:"lost_writes"`
		GhostWrites int64 `json:"ghost_writes"`
		Histories   struct {
			Keys         int
			Operations   int
			Linearizable bool
		}
		Moves  []struct{ Name, Phase string }
		Freeze *struct {
			Move               string
			From, To           string
			RefusedWrites      int64 `json:"refused_writes"`
			Reads              int64
			AppliedWhileFrozen int64 `json:"applied_while_frozen"`
		}
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The document follows the contract, and its shape (keys and value
	// types; the values change from run to run) is the golden one.
	checkContract(t, "demo", out, errOut, code)
	compareGolden(t, filepath.Join("testdata", "json", "demo.shape.golden"), jsonShape(t, out), true)
	if s.Engine != "sqlite" || s.Requests == 0 || s.Failed != 0 || s.WrongReads != 0 || s.LostWrites != 0 || len(s.Moves) != 2 || s.Moves[0].Phase != "contracted" ||
		s.GhostWrites != 0 || !s.Histories.Linearizable || s.Histories.Keys == 0 || s.Histories.Operations <= s.Histories.Keys {
		t.Fatalf("summary %+v", s)
	}
	// One step ran under a write freeze: the move's writes were refused
	// (not failed), its reads went on, and nothing was applied frozen.
	if f := s.Freeze; f == nil || f.Move != "items_price_cents" || f.From != "read-new" || f.To != "write-new" || f.AppliedWhileFrozen != 0 || f.Reads == 0 {
		t.Fatalf("freeze %+v", s.Freeze)
	}
}

func TestDemoCommandBadInput(t *testing.T) {
	used := dbtest.DSN(t, dialect.SQLite)
	db, err := dialect.Open(t.Context(), used)
	if err != nil {
		t.Fatal(err)
	}
	db.MustExec(`CREATE TABLE catalog (id TEXT PRIMARY KEY)`)
	db.Close()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"one instance", []string{"demo", "--instances", "1"}, "a rolling restart needs another instance"},
		{"unknown flag", []string{"demo", "--slow"}, "unknown flag"},
		{"a used database", []string{"--db", used, "demo", "--fast"}, "already has table catalog"},
		{"an argument", []string{"demo", "now"}, "accepts 0 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := tandem(t, tt.args...)
			if code != exitBadInput || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d, %q", code, errOut)
			}
		})
	}
}
