package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// No test's stdin is a terminal: an irreversible step is confirmed with
// --yes, or answered on a terminal of the test's own (TestConfirm).
func init() { stdin = strings.NewReader("") }

// goldenPlan declares a plain move and one kept in sync by triggers.
const goldenPlan = statusPlan

// normalizer replaces what changes from run to run (times, durations,
// pids, hosts, the database's name, the cluster id) in a command's
// output, so the rest can be compared with a golden file. The product
// prints the real values; only the test hides them.
type normalizer struct{ repl []string }

var (
	reTime      = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reNS        = regexp.MustCompile(`"(\w+_ns)":( ?)\d+`)
	reRate      = regexp.MustCompile(`"rows_per_s":( ?)[0-9.e+-]+`)
	rePIDKey    = regexp.MustCompile(`"pid":( ?)\d+`)
	rePIDText   = regexp.MustCompile(`pid \d+`)
	reManualID  = regexp.MustCompile(`/manual-([a-z-]+)-\d+`)
	reClusterID = regexp.MustCompile(`VALUES \('[0-9a-f]{16}'\)`)
	reGo        = regexp.MustCompile(`"(go_version|platform)": "[^"]*"`)
	reWaited    = regexp.MustCompile(`\(waited [^)]*\)`)
	reBytes     = regexp.MustCompile(`"bytes":( ?)\d+`)
)

func (n normalizer) apply(s string) string {
	s = strings.NewReplacer(n.repl...).Replace(s)
	s = reTime.ReplaceAllString(s, "<time>")
	s = reNS.ReplaceAllString(s, `"$1":${2}0`)
	s = reRate.ReplaceAllString(s, `"rows_per_s":${1}0`)
	s = rePIDKey.ReplaceAllString(s, `"pid":${1}0`)
	s = rePIDText.ReplaceAllString(s, "pid <pid>")
	s = reClusterID.ReplaceAllString(s, "VALUES ('<cluster>')")
	s = reGo.ReplaceAllString(s, `"$1": "<$1>"`)
	s = reWaited.ReplaceAllString(s, "(waited <duration>)")
	s = reBytes.ReplaceAllString(s, `"bytes":${1}0`)
	return reManualID.ReplaceAllString(s, "/manual-$1-<n>")
}

// goldenStep is one command line whose --json output is compared with
// testdata/json/NAME.golden (NAME.ENGINE.golden when perEngine: the
// output carries the engine's SQL, its quoting or its name). Every other
// step must print the same JSON on every engine.
type goldenStep struct {
	name      string
	perEngine bool
	code      int
	args      []string
	// before runs first (registering instances, ...).
	before func(g *goldenRun)
}

type goldenRun struct {
	t    *testing.T
	e    dbtest.Engine
	dsn  string
	db   *dialect.DB
	reg  *services.Registry
	plan string
	norm normalizer
}

func (g *goldenRun) register(id string, phases map[string]string) {
	g.t.Helper()
	if err := g.reg.Register(context.Background(), services.Instance{ID: id, Service: "shop", Host: "h-" + id, Release: 1, Phases: phases}); err != nil {
		g.t.Fatal(err)
	}
}

func (g *goldenRun) heartbeat(id string, phases map[string]string) {
	g.t.Helper()
	if err := g.reg.Heartbeat(context.Background(), id, services.Heartbeat{Phases: phases}); err != nil {
		g.t.Fatal(err)
	}
}

func (g *goldenRun) ackFreeze(id string, seq int64) {
	g.t.Helper()
	if err := g.reg.Heartbeat(context.Background(), id, services.Heartbeat{Freeze: seq}); err != nil {
		g.t.Fatal(err)
	}
}

// TestJSONGolden walks every command with --json through a rollout on
// each engine and compares each output, stdout and stderr, with its
// golden file; it also checks the contract itself on every document
// (schema first, snake_case keys, no null list, one object a line in
// streams, an error object on stderr for every exit but 0).
func TestJSONGolden(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	t.Setenv("TANDEM_NATS", "")
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			reg, err := services.New(context.Background(), db)
			if err != nil {
				t.Fatal(err)
			}
			g := &goldenRun{t: t, e: e, dsn: dsn, db: db, reg: reg, plan: writeFile(t, "plan.yaml", goldenPlan)}
			host, _ := os.Hostname()
			red := dialect.RedactDSN(dsn)
			g.norm.repl = []string{red, "<dsn>", dsn, "<dsn>", filepath.Dir(g.plan), "<dir>", reg.Cluster(), "<cluster>"}
			if host != "" {
				g.norm.repl = append(g.norm.repl, `"`+host+`"`, `"<host>"`, "host "+host, "host <host>")
			}
			fresh := dbtest.DSN(t, e.Name)
			g.norm.repl = append(g.norm.repl, dialect.RedactDSN(fresh), "<fresh-dsn>", fresh, "<fresh-dsn>")
			for _, s := range goldenSteps(g, fresh) {
				if s.before != nil {
					s.before(g)
				}
				args := append([]string{"--json", "--db", dsn}, s.args...)
				if len(s.args) > 1 && s.args[0] == "--db" {
					args = append([]string{"--json"}, s.args...)
				}
				out, errOut, code := tandem(t, args...)
				if code != s.code {
					t.Fatalf("%s: tandem %s: exit %d, want %d\n%s%s", s.name, strings.Join(args, " "), code, s.code, out, errOut)
				}
				checkContract(t, s.name, out, errOut, code)
				got := fmt.Sprintf("$ tandem %s\nexit %d\n--- stdout\n%s--- stderr\n%s", g.norm.apply(strings.Join(s.args, " ")), code, g.norm.apply(out), g.norm.apply(errOut))
				file := s.name + ".golden"
				if s.perEngine {
					file = s.name + "." + string(e.Name) + ".golden"
				}
				compareGolden(t, filepath.Join("testdata", "json", file), got, e.Name == dialect.SQLite || s.perEngine)
			}
		})
	}
}

// compareGolden compares got with the file; with -update, owner runs
// (SQLite for engine-neutral files) rewrite it first.
func compareGolden(t *testing.T, path, got string, owner bool) {
	t.Helper()
	if *update && owner {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/tandem -run TestJSONGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./cmd/tandem -run TestJSONGolden -update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// checkContract checks what docs/cli-json.md promises of every output.
func checkContract(t *testing.T, name, out, errOut string, code int) {
	t.Helper()
	docs := splitDocs(t, name, out)
	for _, d := range docs {
		checkDoc(t, name, d, false)
	}
	if code == exitOK {
		if strings.TrimSpace(errOut) != "" {
			t.Errorf("%s: exit 0 with stderr %q", name, errOut)
		}
		return
	}
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) != 1 {
		t.Fatalf("%s: exit %d: stderr is not one JSON object:\n%s", name, code, errOut)
	}
	var e struct {
		Code    string `json:"code"`
		Exit    int    `json:"exit"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &e); err != nil || e.Exit != code || !snakeCase.MatchString(e.Code) || e.Message == "" {
		t.Errorf("%s: error object %q: %v (exit %d)", name, lines[0], err, code)
	}
	checkDoc(t, name, lines[0], true)
}

// splitDocs returns the documents of stdout: one indented document, or a
// stream of one object a line ending with a "result" event.
func splitDocs(t *testing.T, name, out string) []string {
	t.Helper()
	out = strings.TrimSpace(out)
	if out == "" {
		return nil
	}
	if !strings.HasPrefix(out, "{\n") {
		lines := strings.Split(out, "\n")
		var last struct {
			Event string `json:"event"`
		}
		for _, l := range lines {
			var ev struct {
				Event string `json:"event"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Event == "" {
				t.Errorf("%s: stream line %q is not an event: %v", name, l, err)
			}
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Event != "result" {
			t.Errorf("%s: the stream does not end with a result event", name)
		}
		return lines
	}
	return []string{out}
}

func checkDoc(t *testing.T, name, doc string, isError bool) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	// The first key is "schema".
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Errorf("%s: not an object: %s", name, doc)
		return
	}
	if tok, err := dec.Token(); err != nil || tok != "schema" {
		t.Errorf("%s: the first key is %v, not schema: %s", name, tok, doc)
	}
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	if m, _ := v.(map[string]any); m["schema"] != jsonSchema {
		t.Errorf("%s: schema %v", name, m["schema"])
	}
	walkJSON(t, name, "", v)
}

// walkJSON checks keys are snake_case (map values keyed by move or table
// names excepted) and no list is null: a null is only ever "not known".
func walkJSON(t *testing.T, name, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		free := strings.HasSuffix(path, ".phases") || strings.HasSuffix(path, ".metadata") || strings.HasSuffix(path, ".tables") || strings.HasSuffix(path, ".counts")
		for k, c := range x {
			if !free && !snakeCase.MatchString(k) {
				t.Errorf("%s: key %s.%s is not snake_case", name, path, k)
			}
			walkJSON(t, name, path+"."+k, c)
		}
	case []any:
		for i, c := range x {
			walkJSON(t, name, fmt.Sprintf("%s[%d]", path, i), c)
		}
	}
}

func goldenSteps(g *goldenRun, fresh string) []goldenStep {
	withPlan := func(args ...string) []string { return append([]string{"--plan", g.plan}, args...) }
	return []goldenStep{
		{name: "version", args: []string{"version"}},
		// tandem's own tables, on an empty database.
		{name: "schema-ensure-dry-run", perEngine: true, args: []string{"--db", fresh, "schema", "ensure", "--dry-run"}},
		{name: "schema-ensure", perEngine: true, args: []string{"--db", fresh, "schema", "ensure"}},
		{name: "schema-ensure-again", args: []string{"--db", fresh, "schema", "ensure"}},
		{name: "services-list-empty", args: []string{"--db", fresh, "services", "list"}},
		{name: "services-floor-none", args: []string{"--db", fresh, "services", "floor"}},
		{name: "services-cluster", args: []string{"services", "cluster"}},
		// The plan recorded, and the moves at legacy.
		{name: "moves-apply-dry-run", args: withPlan("moves", "apply", "--dry-run")},
		{name: "moves-apply", args: withPlan("moves", "apply")},
		{name: "moves-show", args: []string{"moves", "show", "cents"}},
		{name: "moves-list-legacy", args: []string{"moves", "list"}},
		{name: "status-legacy", args: []string{"status"}},
		{name: "moves-sql", args: []string{"moves", "sql", "cents", "--phase", "write-both", "--dialect", "postgres"}},
		{name: "moves-sql-goose", args: []string{"moves", "sql", "cents", "--phase", "write-both", "--dialect", "mysql", "--format", "goose", "--file-version", "20260101000000"}},
		{name: "triggers-sql", perEngine: true, args: []string{"triggers", "sql", "label"}},
		{name: "triggers-check-legacy", perEngine: true, args: []string{"triggers", "check", "label"}},
		// write-both: an instance still on legacy holds the backfill back.
		{name: "moves-advance-dry-run", perEngine: true, args: []string{"moves", "advance", "cents", "--dry-run"}},
		{name: "moves-advance-write-both", perEngine: true, args: []string{"moves", "advance", "cents"}},
		{name: "wait-phase-met", args: []string{"wait", "--move", "cents", "--phase", "write-both", "--timeout", "1m"}},
		{name: "moves-backfill-refused", code: exitBlocked, args: []string{"moves", "backfill", "cents"},
			before: func(g *goldenRun) { g.register("web-1", map[string]string{"cents": "legacy"}) }},
		{name: "status-backfill-to-run", perEngine: true, code: exitAttention, args: []string{"status"}},
		{name: "wait-gate-timeout", code: exitBlocked, args: []string{"wait", "--move", "cents", "--gate-open", "--timeout", "300ms", "--interval", "100ms"}},
		{name: "moves-backfill", args: []string{"moves", "backfill", "cents"},
			before: func(g *goldenRun) { g.heartbeat("web-1", map[string]string{"cents": "write-both"}) }},
		{name: "status-verify-to-run", perEngine: true, code: exitAttention, args: []string{"status"}},
		{name: "moves-advance-blocked", code: exitAttention, args: []string{"moves", "advance", "cents"}},
		{name: "moves-verify", args: []string{"moves", "verify", "cents"}},
		{name: "moves-list-write-both", perEngine: true, args: []string{"moves", "list"}},
		{name: "moves-advance-read-new", args: []string{"moves", "advance", "cents"}},
		{name: "moves-finalize-refused", code: exitAttention, args: []string{"moves", "finalize", "cents"},
			before: func(g *goldenRun) { g.heartbeat("web-1", map[string]string{"cents": "read-new"}) }},
		{name: "moves-advance-write-new", args: []string{"moves", "advance", "cents"}},
		{name: "moves-finalize-unconfirmed", code: exitBadInput, args: []string{"moves", "finalize", "cents"},
			before: func(g *goldenRun) { g.heartbeat("web-1", map[string]string{"cents": "write-new"}) }},
		{name: "moves-finalize", args: []string{"moves", "finalize", "cents", "--yes"}},
		{name: "moves-advance-rollback-refused", code: exitBadInput, args: []string{"moves", "advance", "cents", "--to", "read-new"}},
		{name: "wait-phase-never", code: exitBadInput, args: []string{"wait", "--move", "cents", "--phase", "read-new", "--timeout", "1m"}},
		{name: "moves-advance-already", args: []string{"moves", "advance", "cents", "--to", "write-new"}},
		{name: "services-floor", args: []string{"services", "floor"}},
		{name: "services-list", args: []string{"services", "list"}},
		// A second instance gone missing: it needs attention.
		{name: "status-missing-instance", perEngine: true, code: exitAttention, args: []string{"status"},
			before: func(g *goldenRun) {
				past := time.Now().Add(-10 * time.Minute)
				reg, err := services.New(context.Background(), g.db, services.WithClock(func() time.Time { return past }))
				if err != nil {
					g.t.Fatal(err)
				}
				if err := reg.Register(context.Background(), services.Instance{ID: "web-2", Service: "shop", Host: "h-web-2", Release: 1}); err != nil {
					g.t.Fatal(err)
				}
			}},
		{name: "services-delete", args: []string{"services", "delete", "web-2"}},
		{name: "services-delete-last", args: []string{"services", "delete", "web-1", "--force"}},
		{name: "services-floor-after-delete", args: []string{"services", "floor"}},
		// A move with triggers: entering write-both installs them; dropped
		// by hand they differ from what the phase needs, and install
		// repairs them.
		{name: "moves-advance-triggers", perEngine: true, args: []string{"moves", "advance", "label"}},
		{name: "triggers-check", perEngine: true, args: []string{"triggers", "check", "label"}},
		{name: "triggers-drop", perEngine: true, args: []string{"triggers", "drop", "label"}},
		{name: "triggers-check-differs", perEngine: true, code: exitAttention, args: []string{"triggers", "check", "label"}},
		{name: "status-triggers-differ", perEngine: true, code: exitAttention, args: []string{"status"}},
		{name: "triggers-install-dry-run", perEngine: true, args: []string{"triggers", "install", "label", "--dry-run"}},
		{name: "triggers-install", perEngine: true, args: []string{"triggers", "install", "label"}},
		// A write freeze: recorded, acknowledged by the one instance's
		// heartbeat, shown in status, thawed.
		{name: "freeze-no-reason", code: exitBadInput, args: []string{"freeze", "--move", "cents"}},
		{name: "freeze-unknown-move", code: exitBadInput, args: []string{"freeze", "--move", "nosuch", "--reason", "offline upgrade"}},
		{name: "freeze-move-and-all", code: exitBadInput, args: []string{"freeze", "--move", "cents", "--all", "--reason", "offline upgrade"}},
		{name: "freeze-no-wait", args: []string{"freeze", "--move", "cents", "--reason", "offline upgrade", "--no-wait"},
			before: func(g *goldenRun) {
				g.register("web-3", map[string]string{"cents": "write-new", "label": "write-both"})
			}},
		// Not acknowledged yet: a blocker whose next command waits.
		{name: "status-freeze-pending", perEngine: true, code: exitAttention, args: []string{"status"}},
		{name: "wait-frozen-timeout", code: exitBlocked, args: []string{"wait", "--frozen", "--timeout", "300ms", "--interval", "100ms"}},
		{name: "freeze-timeout", code: exitBlocked, args: []string{"freeze", "--move", "cents", "--reason", "offline upgrade", "--timeout", "300ms", "--interval", "100ms"}},
		{name: "wait-frozen", args: []string{"wait", "--frozen", "--move", "cents", "--timeout", "1m"},
			before: func(g *goldenRun) { g.ackFreeze("web-3", 1) }},
		{name: "status-frozen", perEngine: true, code: exitAttention, args: []string{"status"}},
		{name: "services-list-frozen", args: []string{"services", "list"}},
		{name: "wait-thawed-never", code: exitBadInput, args: []string{"wait", "--thawed", "--timeout", "1m"}},
		{name: "thaw-no-wait", args: []string{"thaw", "--all", "--no-wait"}},
		{name: "wait-thawed", args: []string{"wait", "--thawed", "--timeout", "1m"},
			before: func(g *goldenRun) { g.ackFreeze("web-3", 2) }},
		{name: "thaw-again", args: []string{"thaw", "--all"}},
		// A missing instance cannot acknowledge: past the timeout the
		// freeze needs attention, and names the delete.
		{name: "freeze-missing-instance", code: exitAttention, args: []string{"freeze", "--all", "--reason", "major API version", "--timeout", "300ms", "--interval", "100ms"},
			before: func(g *goldenRun) {
				past := time.Now().Add(-10 * time.Minute)
				reg, err := services.New(context.Background(), g.db, services.WithClock(func() time.Time { return past }))
				if err != nil {
					g.t.Fatal(err)
				}
				if err := reg.Register(context.Background(), services.Instance{ID: "web-4", Service: "shop", Host: "h-web-4", Release: 1}); err != nil {
					g.t.Fatal(err)
				}
			}},
		{name: "status-freeze-pending-missing", perEngine: true, code: exitAttention, args: []string{"status"}},
		{name: "thaw-missing-instance", code: exitAttention, args: []string{"thaw", "--all", "--timeout", "300ms", "--interval", "100ms"}},
		{name: "services-delete-missing-frozen", args: []string{"services", "delete", "web-4"}},
		// The contract cannot be undone: refused where no one can confirm
		// it, a dry run that would take a backup, a backup that would
		// overwrite a file refused, then the backup taken and the contract.
		{name: "moves-advance-contract-unconfirmed", code: exitBadInput, args: []string{"moves", "advance", "cents"}},
		{name: "moves-advance-contract-dry-run", perEngine: true, args: []string{"moves", "advance", "cents", "--dry-run", "--backup", filepath.Join(filepath.Dir(g.plan), "cents.backup")}},
		{name: "moves-advance-contract-backup-exists", code: exitBadInput, args: []string{"moves", "advance", "cents", "--yes", "--backup", g.plan}},
		{name: "moves-advance-contract", perEngine: true, args: []string{"moves", "advance", "cents", "--yes", "--backup", filepath.Join(filepath.Dir(g.plan), "cents.backup")}},
		{name: "moves-list-contracted", perEngine: true, args: []string{"moves", "list"}},
		// Errors: one object on stderr.
		{name: "error-unknown-command", code: exitBadInput, args: []string{"moves", "frobnicate"}},
		{name: "error-unknown-move", code: exitBadInput, args: []string{"moves", "advance", "nosuch"}},
		{name: "error-bad-flag", code: exitBadInput, args: []string{"status", "--bogus"}},
		{name: "error-database-unreachable", code: exitUnreachable, args: []string{"--db", "postgres://tandem:secret@127.0.0.1:1/none?sslmode=disable&connect_timeout=5", "status"}},
		{name: "error-nats-unreachable", code: exitUnreachable, args: []string{"--nats", "nats://127.0.0.1:1", "services", "list"}},
	}
}

// jsonShape is a document with every value replaced by its type and every
// list cut to its first element: what a golden file can hold of an output
// whose values change from run to run (the demo's).
func jsonShape(t *testing.T, doc string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	var shape func(v any) any
	shape = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, c := range x {
				out[k] = shape(c)
			}
			return out
		case []any:
			if len(x) == 0 {
				return []any{}
			}
			return []any{shape(x[0])}
		case string:
			return "string"
		case float64:
			return "number"
		case bool:
			return "bool"
		}
		return nil
	}
	b, err := json.MarshalIndent(shape(v), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}
