package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// statusPlan declares a plain move and one kept in sync by triggers.
const statusPlan = `version: 1
moves:
  - name: cents
    table: products
    key: [id]
    old: price
    new: {column: cents, type: BIGINT}
    forward:
      sql: "CAST(ROUND({value} * 100) AS BIGINT)"
      dialects: {mysql: "CAST(ROUND({value} * 100) AS SIGNED)", sqlite: "CAST(ROUND({value} * 100) AS INTEGER)"}
    backward: {sql: "{value} / 100.0"}
  - name: label
    table: products
    key: [id]
    old: label
    new: {column: label2, type: "VARCHAR(40)"}
    triggers: true
`

// statusReportJSON is the part of `tandem --json status` the test reads.
type statusReportJSON struct {
	Safe     bool `json:"safe"`
	Exit     int  `json:"exit"`
	Blockers []struct {
		Kind        string  `json:"kind"`
		Move        *string `json:"move"`
		Message     string  `json:"message"`
		NextCommand *string `json:"next_command"`
		Exit        int     `json:"exit"`
	} `json:"blockers"`
	Moves []struct {
		Name         string `json:"name"`
		Phase        string `json:"phase"`
		SyncTriggers string `json:"sync_triggers"`
		Problems     []struct {
			Kind    string `json:"kind"`
			Message string `json:"message"`
		} `json:"problems"`
	} `json:"moves"`
}

// blocked is every blocker as "move: message" ("-: message" for none),
// then " => next command".
func (r statusReportJSON) blocked() []string {
	var out []string
	for _, b := range r.Blockers {
		m, next := "-", "-"
		if b.Move != nil {
			m = *b.Move
		}
		if b.NextCommand != nil {
			next = *b.NextCommand
		}
		out = append(out, m+": "+b.Message+" => "+next)
	}
	return out
}

// TestStatusIsSafeOnlyWhenNothingBlocks puts a database in each situation
// an operator meets and asks `tandem status`, with no plan file, for its
// text, its JSON and its exit code: "Nothing blocks" and exit 0 only when
// nothing does, and otherwise every blocker named with the command to run.
func TestStatusIsSafeOnlyWhenNothingBlocks(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", statusPlan)
	type env struct {
		t   *testing.T
		dsn string
		db  *dialect.DB
		reg *services.Registry
	}
	withPlan := func(e env, args ...string) {
		e.t.Helper()
		must(e.t, exitOK, append([]string{"--db", e.dsn, "--plan", plan}, args...)...)
	}
	register := func(e env, id string, phases map[string]string, opts ...services.Option) {
		e.t.Helper()
		reg, err := services.New(context.Background(), e.db, opts...)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := reg.Register(context.Background(), services.Instance{ID: id, Service: "shop", Host: "h-" + id, Release: 1, Phases: phases}); err != nil {
			e.t.Fatal(err)
		}
	}
	ack := func(e env, id string, seq int64) {
		e.t.Helper()
		reg, err := services.New(context.Background(), e.db)
		if err != nil {
			e.t.Fatal(err)
		}
		if err := reg.Heartbeat(context.Background(), id, services.Heartbeat{Freeze: seq}); err != nil {
			e.t.Fatal(err)
		}
	}
	// centsReady: cents at write-both, backfilled and verified, web-1 on it:
	// read-new is open.
	centsReady := func(e env) {
		withPlan(e, "moves", "advance", "cents")
		withPlan(e, "moves", "backfill", "cents")
		withPlan(e, "moves", "verify", "cents")
		register(e, "web-1", map[string]string{"cents": "write-both"})
	}
	// labelTo walks label, with no instance registered, to write-new and
	// finalizes it; contract too when contract is set.
	labelTo := func(e env, contract bool) {
		withPlan(e, "moves", "advance", "label")
		withPlan(e, "moves", "backfill", "label")
		withPlan(e, "moves", "verify", "label")
		withPlan(e, "moves", "advance", "label", "--to", "read-new")
		withPlan(e, "moves", "advance", "label", "--to", "write-new")
		withPlan(e, "moves", "finalize", "label", "--yes")
		if contract {
			withPlan(e, "moves", "advance", "label", "--to", "contracted", "--yes")
		}
	}
	cases := []struct {
		name  string
		setup func(e env)
		code  int
		// text must appear in the text; blocked in the JSON's blocked
		// list; problem is the kind of problem reported on a move.
		text    []string
		blocked string
		problem string
		// triggersCheck: the exit code of `tandem triggers check label`.
		triggersCheck int
	}{
		{name: "all fine", setup: centsReady, code: exitOK,
			text: []string{"next: read-new is open: tandem moves advance cents", "Nothing blocks: it is safe to roll the next instance."}},
		{name: "backfill to run", code: exitAttention,
			setup: func(e env) {
				withPlan(e, "moves", "advance", "cents")
				register(e, "web-1", map[string]string{"cents": "write-both"})
			},
			text:    []string{"[backfill] the backfill has not run: tandem moves backfill cents"},
			blocked: "cents: the backfill has not run: tandem moves backfill cents => tandem moves backfill cents"},
		{name: "interrupted", code: exitAttention,
			setup: func(e env) {
				withPlan(e, "moves", "apply")
				// A kill left the step proposed after its DDL ran (MySQL
				// commits DDL on its own).
				e.db.MustExec(`INSERT INTO tandem_steps (id, move, app_release, description, proposed_at, sql_text) VALUES ('cents/write-both/1-add-column', 'cents', 0, 'add column products.cents', '2026-01-01 00:00:00', '')`)
				e.db.MustExec(`ALTER TABLE products ADD COLUMN cents BIGINT`)
			},
			text:    []string{"INTERRUPTED: step cents/write-both/1-add-column (add column products.cents) was proposed at 2026-01-01T00:00:00Z and never applied", "tandem moves advance cents --to write-both checks the live schema and completes it"},
			blocked: "cents: step cents/write-both/1-add-column", problem: "interrupted"},
		{name: "contracted", code: exitOK, setup: func(e env) { labelTo(e, true) },
			text: []string{"sync triggers: dropped with the contract", "done: the old column is dropped", "Nothing blocks"}},
		{name: "triggers differing", code: exitAttention, triggersCheck: exitAttention,
			setup: func(e env) {
				labelTo(e, false) // contract is open: only the triggers block
				must(e.t, exitOK, "--db", e.dsn, "triggers", "drop", "label")
			},
			text:    []string{"NOT SAFE [triggers]: sync triggers of move label are not as generated", "repair them with tandem triggers install label"},
			blocked: "label: sync triggers of move label are not as generated", problem: "triggers"},
		{name: "missing instance", code: exitAttention,
			setup: func(e env) {
				centsReady(e)
				past := time.Now().Add(-10 * time.Minute)
				register(e, "web-2", map[string]string{"cents": "write-both"}, services.WithClock(func() time.Time { return past }))
			},
			text:    []string{"instance web-2 (shop on h-web-2, release 1) is missing", "tandem services delete web-2"},
			blocked: "-: instance web-2 (shop on h-web-2, release 1) is missing"},
		{name: "error instance", code: exitAttention,
			setup: func(e env) {
				centsReady(e)
				register(e, "web-3", map[string]string{"cents": "write-both"})
				reg, err := services.New(context.Background(), e.db)
				if err != nil {
					e.t.Fatal(err)
				}
				if err := reg.SetState(context.Background(), "web-3", services.StateError); err != nil {
					e.t.Fatal(err)
				}
			},
			text:    []string{"instance web-3 (shop on h-web-3, release 1) is error", "delete it if it will not return: tandem services delete web-3"},
			blocked: "-: instance web-3 (shop on h-web-3, release 1) is error"},
		// A freeze (or a thaw) not acknowledged everywhere blocks: waiting
		// clears it while the instance is up, a delete when it is gone. One
		// acknowledged everywhere is a state, shown, not a blocker.
		{name: "freeze pending", code: exitBlocked,
			setup: func(e env) {
				centsReady(e)
				withPlan(e, "freeze", "--move", "cents", "--reason", "restore", "--no-wait")
			},
			text:    []string{"NOT frozen everywhere: 1 of 1 instance(s) have not acknowledged", "[freeze-pending] writes on move cents are frozen (freeze state 1 since ", "next: tandem wait --frozen"},
			blocked: "web-1 (shop on h-web-1, release 1, up, acknowledged state 0); a write they began may still commit, so writes are not frozen everywhere yet; they acknowledge within their tracker's refresh and a heartbeat: tandem wait --frozen => tandem wait --frozen"},
		{name: "freeze pending on a missing instance", code: exitAttention,
			setup: func(e env) {
				centsReady(e)
				past := time.Now().Add(-10 * time.Minute)
				register(e, "web-2", map[string]string{"cents": "write-both"}, services.WithClock(func() time.Time { return past }))
				withPlan(e, "freeze", "--all", "--reason", "restore", "--no-wait")
				ack(e, "web-1", 1)
			},
			text:    []string{"[freeze-pending] writes on every move are frozen (freeze state 1 since ", "web-2 cannot acknowledge (missing or in error)", "next: tandem services delete web-2"},
			blocked: "bring them back, or delete the ones that will not return: tandem services delete web-2 => tandem services delete web-2"},
		{name: "frozen everywhere", code: exitOK,
			setup: func(e env) {
				centsReady(e)
				withPlan(e, "freeze", "--move", "cents", "--reason", "restore", "--no-wait")
				ack(e, "web-1", 1)
			},
			text: []string{"Writes: frozen on move cents since ", "(freeze state 1): restore",
				"acknowledged by every instance (1): frozen everywhere: writes on move cents are refused (dualwrite.ErrFrozen, RPC code 423) and reads go on, until tandem thaw --move cents",
				"Nothing blocks"}},
		{name: "thaw pending", code: exitBlocked,
			setup: func(e env) {
				centsReady(e)
				withPlan(e, "freeze", "--move", "cents", "--reason", "restore", "--no-wait")
				ack(e, "web-1", 1)
				withPlan(e, "thaw", "--all", "--no-wait")
			},
			text:    []string{"Writes: thawed at ", "NOT thawed everywhere", "next: tandem wait --thawed"},
			blocked: "-: writes are thawed (freeze state 2), but 1 of 1 instance(s) have not acknowledged it: web-1 (shop on h-web-1, release 1, up, acknowledged state 1); they may still refuse writes the thaw lifted, so writes are not thawed everywhere yet; they acknowledge within their tracker's refresh and a heartbeat: tandem wait --thawed => tandem wait --thawed"},
	}
	for _, eng := range dbtest.Engines {
		t.Run(string(eng.Name), func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					dsn, db := ledgerDB(t, eng)
					e := env{t: t, dsn: dsn, db: db}
					tc.setup(e)
					// From here on, no plan: the ledger alone.
					out, errOut, code := tandem(t, "--db", dsn, "status")
					if code != tc.code {
						t.Fatalf("status: exit %d, want %d\n%s%s", code, tc.code, out, errOut)
					}
					for _, want := range tc.text {
						if !strings.Contains(out, want) {
							t.Errorf("status text lacks %q:\n%s", want, out)
						}
					}
					if safe := strings.Contains(out, "Nothing blocks"); safe != (tc.code == exitOK) {
						t.Errorf("status says nothing blocks: %v, exit %d:\n%s", safe, code, out)
					}
					text := out
					out, errOut, code = tandem(t, "--db", dsn, "--json", "status")
					var rep statusReportJSON
					if err := json.Unmarshal([]byte(out), &rep); err != nil || code != tc.code {
						t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, errOut)
					}
					// The text lists one blocker a line, as many as the JSON.
					if _, blockedText, ok := strings.Cut(text, "\nBlocked:\n"); ok != (len(rep.Blockers) > 0) ||
						strings.Count(blockedText, "\n  - ") != max(len(rep.Blockers)-1, 0) {
						t.Errorf("the text's Blocked: list is not one line per blocker (%d blockers):\n%s", len(rep.Blockers), text)
					}
					if rep.Safe != (tc.code == exitOK) || rep.Safe != (len(rep.Blockers) == 0) || rep.Exit != tc.code {
						t.Errorf("JSON safe %v, exit %d with blockers %q", rep.Safe, rep.Exit, rep.blocked())
					}
					if tc.blocked != "" && !strings.Contains(strings.Join(rep.blocked(), "\n"), tc.blocked) {
						t.Errorf("JSON blockers lack %q: %q", tc.blocked, rep.blocked())
					}
					var problems []string
					for _, m := range rep.Moves {
						for _, p := range m.Problems {
							problems = append(problems, p.Kind)
						}
					}
					if got := strings.Join(problems, ","); got != tc.problem {
						t.Errorf("JSON problems %q, want %q", got, tc.problem)
					}
					out, errOut, code = tandem(t, "--db", dsn, "triggers", "check", "label")
					if code != tc.triggersCheck {
						t.Errorf("triggers check label: exit %d, want %d\n%s%s", code, tc.triggersCheck, out, errOut)
					}
					if tc.name == "contracted" && !strings.Contains(out, "at contracted: dropped with the contract") {
						t.Errorf("triggers check after contract: %s", out)
					}
				})
			}
		})
	}
}
