package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/demo"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// pathFleet is a fleet of inventory instances for the planner's tests:
// each instance reports, for every move, the phase a tracker of its
// release would act on, as a heartbeat would once it acknowledged.
type pathFleet struct {
	t     *testing.T
	db    *dialect.DB
	moves []move.Move
	ids   []string
	rel   map[string]int64
	regs  map[string]*services.Registry
}

// apiOf is what each release of the demo serves.
var pathAPIOf = map[int64]string{41: "1.0", 42: "1.1", 43: "1.2", 44: "1.2"}

func (f *pathFleet) phases(release int64) map[string]string {
	f.t.Helper()
	mg, err := dualwrite.Load(context.Background(), f.db, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range f.moves {
		p, err := mg.Phase(context.Background(), m.Name)
		if err != nil {
			f.t.Fatal(err)
		}
		out[m.Name] = dualwrite.Effective(p, m.Releases.Highest(release)).String()
	}
	return out
}

// start starts (or restarts, as a new process) instance id on release.
func (f *pathFleet) start(id string, release int64) {
	f.t.Helper()
	ctx := context.Background()
	if old := f.regs[id]; old != nil {
		old.Close() // the process ends: its successor supersedes it at once
	} else {
		f.ids = append(f.ids, id)
	}
	reg, err := services.New(ctx, f.db)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { reg.Close() })
	v := services.MustParseVersion(pathAPIOf[release])
	err = reg.Register(ctx, services.Instance{ID: id, Service: "inventory", Host: "h-" + id, Release: release,
		APIs:   []services.API{{Name: "inventory", Current: v, Oldest: services.MustParseVersion("1.0")}},
		Phases: f.phases(release)})
	if err != nil {
		f.t.Fatalf("start %s on release %d: %v", id, release, err)
	}
	f.regs[id], f.rel[id] = reg, release
}

// ack has every instance report the phases it acts on now, and the write
// freeze state in force, as a tracker does once no write begun before it
// still runs.
func (f *pathFleet) ack() {
	f.t.Helper()
	fz, err := dualwrite.ReadFreeze(context.Background(), f.db)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, id := range f.ids {
		if err := f.regs[id].Heartbeat(context.Background(), id, services.Heartbeat{Phases: f.phases(f.rel[id]), Freeze: fz.Seq}); err != nil {
			f.t.Fatal(err)
		}
	}
}

// runAcking runs a tandem command that waits for the instances (a freeze
// or a thaw) while they acknowledge what it records.
func (f *pathFleet) runAcking(args ...string) (string, string, int) {
	f.t.Helper()
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		var out, errOut bytes.Buffer
		code := run(context.Background(), args, &out, &errOut)
		done <- result{out.String(), errOut.String(), code}
	}()
	for {
		select {
		case r := <-done:
			return r.out, r.errOut, r.code
		case <-time.After(50 * time.Millisecond):
			f.ack()
		}
	}
}

// shellWords splits a command line as a shell does the commands tandem
// path prints: words, and '...' quoted ones.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	in, started := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			in, started = !in, true
		case r == ' ' && !in:
			if started {
				words = append(words, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		words = append(words, cur.String())
	}
	return words
}

// withFreezes is the demo's moves, items_price_cents entering read-new
// and catalog_price_cents entering contracted under a write freeze.
func withFreezes() []move.Move {
	out := demo.Moves()
	out[0].Freeze = []move.Phase{move.ReadNew}
	out[1].Freeze = []move.Phase{move.Contracted}
	return out
}

// withTriggersFlipped is the demo's moves with and without triggers the
// other way round.
func withTriggersFlipped() []move.Move {
	var out []move.Move
	for _, m := range demo.Moves() {
		m.Triggers = !m.Triggers
		out = append(out, m)
	}
	return out
}

// TestPathGolden follows the planner's path for the demo's moves, from
// every instance on release 41 to release 44, on every engine: at each
// state (every phase of each move, with and without triggers, and with
// one instance one release behind halfway through each roll) it compares
// `tandem path --to 44` and its JSON with a golden file, then runs the
// first step's command exactly as printed (a roll restarts the instances
// one at a time, then runs the printed tandem wait). The path must end,
// and every engine must print the same.
func TestPathGolden(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	t.Setenv("TANDEM_NATS", "")
	variants := []struct {
		name  string
		moves []move.Move
	}{
		{"demo", demo.Moves()},
		{"demo-triggers-flipped", withTriggersFlipped()},
		{"demo-freezes", withFreezes()},
	}
	for _, v := range variants {
		for _, e := range dbtest.Engines {
			t.Run(v.name+"/"+string(e.Name), func(t *testing.T) {
				got := walkPath(t, e, v.moves)
				compareGolden(t, filepath.Join("testdata", "path", v.name+".golden"), got, e.Name == dialect.SQLite)
			})
		}
	}
}

func walkPath(t *testing.T, e dbtest.Engine, moves []move.Move) string {
	ctx := context.Background()
	dsn := dbtest.DSN(t, e.Name)
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, m := range moves {
		ddl, err := inventory.CreateTableSQL(m.Table)
		if err != nil {
			t.Fatal(err)
		}
		db.MustExec(ddl)
		db.MustExec(`INSERT INTO ` + m.Table + ` (id, name, quantity, price) VALUES ('a', 'apple', 3, 2), ('b', 'bread', 1, 5)`)
	}
	must(t, exitOK, "--db", dsn, "schema", "ensure")
	var plan strings.Builder
	if err := dualwrite.WritePlan(&plan, moves); err != nil {
		t.Fatal(err)
	}
	planFile := writeFile(t, "plan.yaml", plan.String())
	must(t, exitOK, "--db", dsn, "--plan", planFile, "moves", "apply")

	f := &pathFleet{t: t, db: db, moves: moves, rel: map[string]int64{}, regs: map[string]*services.Registry{}}
	for i := 1; i <= 3; i++ {
		f.start(fmt.Sprintf("inventory-%d", i), 41)
	}
	norm := normalizer{repl: []string{dialect.RedactDSN(dsn), "<dsn>", dsn, "<dsn>"}}
	var out strings.Builder
	state := 0
	record := func(what string, ack bool) []pathStepJSON {
		t.Helper()
		if ack {
			f.ack()
		}
		state++
		before := freshDump(t, dsn)
		text, textErr, textCode := tandem(t, "--db", dsn, "path", "--to", "44")
		js, jsErr, jsCode := tandem(t, "--db", dsn, "--json", "path", "--to", "44")
		if after := freshDump(t, dsn); after != before {
			t.Fatalf("tandem path changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if textCode != jsCode || textCode == exitFailed || textCode == exitBadInput {
			t.Fatalf("state %d (%s): path exits %d (text) and %d (json)\n%s%s\n%s%s", state, what, textCode, jsCode, text, textErr, js, jsErr)
		}
		checkContract(t, "path", js, jsErr, jsCode)
		fmt.Fprintf(&out, "=== state %d: %s\n$ tandem path --to 44\nexit %d\n%s$ tandem --json path --to 44\n%s", state, what, textCode, norm.apply(text), norm.apply(js))
		// The table marks where each move stands.
		tableArgs := []string{"path"}
		if state == 1 {
			tableArgs = []string{"--json", "path"}
		}
		table, tableErr, tableCode := tandem(t, append([]string{"--db", dsn}, tableArgs...)...)
		if tableCode != exitOK {
			t.Fatalf("tandem %v: exit %d\n%s%s", tableArgs, tableCode, table, tableErr)
		}
		fmt.Fprintf(&out, "$ tandem %s\n%s", strings.Join(tableArgs, " "), norm.apply(table))
		var doc pathDoc
		if err := json.Unmarshal([]byte(js), &doc); err != nil {
			t.Fatalf("path --json: %v\n%s", err, js)
		}
		if doc.Exit != jsCode {
			t.Fatalf("path --json says exit %d, exits %d", doc.Exit, jsCode)
		}
		return doc.Steps
	}
	// An instance in error holds every step: someone must act.
	f.ack()
	if err := f.regs["inventory-2"].Heartbeat(ctx, "inventory-2", services.Heartbeat{State: services.StateError}); err != nil {
		t.Fatal(err)
	}
	if steps := record("inventory-2 reports an error", false); len(steps) == 0 {
		t.Fatal("no path")
	}
	if err := f.regs["inventory-2"].Heartbeat(ctx, "inventory-2", services.Heartbeat{State: services.StateUp}); err != nil {
		t.Fatal(err)
	}
	what := "every instance on release 41, every move at legacy"
	for range 40 {
		steps := record(what, true)
		if len(steps) == 0 {
			for _, id := range f.ids {
				if f.rel[id] != 44 {
					t.Fatalf("the path ended with %s on release %d", id, f.rel[id])
				}
			}
			for _, m := range moves {
				if p := f.phases(44)[m.Name]; p != move.Contracted.String() {
					t.Fatalf("the path ended with %s at %s", m.Name, p)
				}
			}
			return out.String()
		}
		s := steps[0]
		args := shellWords(s.Command)
		if args[0] != "tandem" {
			t.Fatalf("step %+v: not a tandem command", s)
		}
		if s.Kind == "roll" {
			// One at a time: the state with one instance left one
			// release behind is planned too.
			for i, id := range s.Instances {
				if i == len(s.Instances)-1 && len(s.Instances) > 1 {
					record(fmt.Sprintf("rolling release %d: %s still on release %d", *s.Release, id, f.rel[id]), true)
				}
				f.start(id, *s.Release)
			}
			f.ack()
		}
		runIt := func(args ...string) (string, string, int) { return tandem(t, args...) }
		if s.Kind == "freeze" || s.Kind == "thaw" {
			runIt = f.runAcking
		}
		if s.Kind == "contract" || s.Kind == "finalize" {
			// It cannot be undone: where no terminal can confirm it, the
			// printed command is refused, and a script adds --yes.
			if o, errOut, code := tandem(t, append([]string{"--db", dsn}, args[1:]...)...); code != exitBadInput || !strings.Contains(errOut, "--yes") {
				t.Fatalf("step %d (%s): %s without --yes: exit %d\n%s%s", s.N, s.Kind, s.Command, code, o, errOut)
			}
			args = append(args, "--yes")
		}
		if o, errOut, code := runIt(append([]string{"--db", dsn}, args[1:]...)...); code != exitOK {
			t.Fatalf("step %d (%s): %s: exit %d\n%s%s", s.N, s.Kind, s.Command, code, o, errOut)
		}
		what = "after " + s.Command
		if s.Kind == "freeze" {
			// The freeze is in force: status (and path) show it.
			if o, _, _ := tandem(t, "--db", dsn, "--json", "status"); !strings.Contains(o, `"frozen": true`) {
				t.Fatalf("status after %s:\n%s", s.Command, o)
			}
		}
		if s.Kind == "advance" && *s.To == move.ReadNew.String() {
			// Before the instances acknowledge the phase, the next
			// step waits for them.
			record(what+", before the instances acknowledge it", false)
		}
	}
	t.Fatalf("the path did not end:\n%s", out.String())
	return ""
}

// freshDump dumps the database through a connection of its own: the
// walk's connection may hold statements prepared before a contract
// dropped a column (PostgreSQL refuses to reuse those).
func freshDump(t *testing.T, dsn string) string {
	t.Helper()
	db, err := dialect.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return dbtest.Dump(t, db)
}

// TestPathRefuses: a target that can never be reached as things stand is
// bad input (exit 2), with the JSON error object only.
func TestPathRefuses(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	t.Setenv("TANDEM_NATS", "")
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			reg, err := services.New(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			if err := reg.Register(context.Background(), services.Instance{ID: "web-1", Service: "shop", Host: "h-web-1", Release: 3}); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"--to", "2"}, "older than release 3, which instances run"},
				{[]string{"--to", "0"}, "a release is a positive integer"},
				{[]string{"--to", "forty"}, "invalid argument"},
				{[]string{"extra"}, "accepts 0 arg(s)"},
			} {
				out, errOut, code := tandem(t, append([]string{"--db", dsn, "--json", "path"}, tc.args...)...)
				if code != exitBadInput || out != "" || !strings.Contains(errOut, tc.want) {
					t.Fatalf("path %v: exit %d, want %d\nstdout: %s\nstderr: %s", tc.args, code, exitBadInput, out, errOut)
				}
				checkContract(t, "path", out, errOut, code)
			}
			// Release 3 itself: nothing to do, nothing blocks.
			if out := must(t, exitOK, "--db", dsn, "path", "--to", "3"); !strings.Contains(out, "nothing to do") || strings.Contains(out, "no move names") {
				t.Fatalf("path --to 3: %s", out)
			}
			// A release nothing knows is planned, and said to be unknown.
			if out := must(t, exitOK, "--db", dsn, "path", "--to", "9"); !strings.Contains(out, "roll release 9 to web-1") || !strings.Contains(out, "no move names release 9 and no instance of it registered") {
				t.Fatalf("path --to 9: %s", out)
			}
		})
	}
}

// TestPathOffline: a release the registry saw serving only a major version
// the running release does not speak (an instance of it since deleted) is
// rolled in an offline window: every move frozen, every instance at once.
func TestPathOffline(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	t.Setenv("TANDEM_NATS", "")
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			ctx := context.Background()
			dsn, db := ledgerDB(t, e)
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer reg.Close()
			serves := func(oldest, current string) []services.API {
				return []services.API{{Name: "shop", Oldest: services.MustParseVersion(oldest), Current: services.MustParseVersion(current)}}
			}
			for _, in := range []services.Instance{
				{ID: "canary", Service: "shop", Host: "h-canary", Release: 42, APIs: serves("2.0", "2.1")},
				{ID: "web-1", Service: "shop", Host: "h-web-1", Release: 41, APIs: serves("1.0", "1.4")},
				{ID: "web-2", Service: "shop", Host: "h-web-2", Release: 41, APIs: serves("1.0", "1.4")},
			} {
				if err := reg.Register(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			// The canary tried release 42 and was taken out again.
			if err := reg.Deregister(ctx, "canary"); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := tandem(t, "--db", dsn, "--json", "path", "--to", "42")
			if code != exitOK {
				t.Fatalf("path: exit %d\n%s%s", code, out, errOut)
			}
			var doc pathDoc
			if err := json.Unmarshal([]byte(out), &doc); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range doc.Steps {
				got = append(got, s.Command)
			}
			want := []string{"tandem freeze --all --reason 'release 42 shares no RPC version with release 41'", "tandem wait --floor 42", "tandem thaw --all"}
			if strings.Join(got, "\n") != strings.Join(want, "\n") || !doc.Steps[1].Offline || !doc.Steps[1].Frozen ||
				!strings.Contains(doc.Steps[1].Why, "all at once") || !strings.Contains(doc.Steps[1].Why, "API shop: release 41 serves 1.0 to 1.4, release 42 2.0 to 2.1") {
				t.Fatalf("steps:\n%s\n%+v", strings.Join(got, "\n"), doc.Steps)
			}
			text := must(t, exitOK, "--db", dsn, "path", "--to", "42")
			if !strings.Contains(text, "roll release 42 to web-1, web-2 [offline, frozen]") {
				t.Fatalf("text:\n%s", text)
			}
		})
	}
}
