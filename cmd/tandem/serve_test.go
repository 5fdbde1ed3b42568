package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/services"
)

// servePlan is one move without triggers, shipped one phase a release.
const servePlan = `version: 1
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
    releases: {write_both: 41, read_new: 42, write_new: 43, contracted: 43}
`

var serveURLRE = regexp.MustCompile(`http://[0-9.:]+/`)

// startServe runs `tandem ... serve --addr 127.0.0.1:0` until the test
// ends and returns its base URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append(args, "serve", "--addr", "127.0.0.1:0"), &out, &errOut) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exited %d: %s", code, errOut.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s of its context")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if u := serveURLRE.FindString(out.String()); u != "" {
			return u
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s%s", code, out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("serve printed no address within 30s: %s%s", out.String(), errOut.String())
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServe runs tandem serve on every engine against a rollout under
// way: /api/status is exactly tandem status --json, /metrics reports the
// floor, instances and the move from the registry and the ledger, the
// page shows them, /events streams the page's live part and changes when
// the registry announces a change, and nothing but GET is served.
func TestServe(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", servePlan)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			ns := natstest.New(t)
			natsURL := ns.ClientURL()
			nc := natstest.Connect(t, ns)
			ctx := context.Background()
			reg, err := services.New(ctx, db, services.WithNATS(nc))
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"web-1", "web-2"} {
				if err := reg.Register(ctx, services.Instance{ID: id, Service: "shop", Host: "h-" + id, Release: 41,
					APIs:   []services.API{{Name: "shop", Current: services.MustParseVersion("1.1"), Oldest: services.MustParseVersion("1.0")}},
					Phases: map[string]string{"cents": "legacy"}}); err != nil {
					t.Fatal(err)
				}
			}
			// A password in the DSN (PostgreSQL here trusts local
			// connections, so any password works) never shows.
			const secret = "S3CRETpw"
			if e.Name == dialect.Postgres && strings.HasPrefix(dsn, "postgres://postgres@") {
				dsn = strings.Replace(dsn, "postgres://postgres@", "postgres://postgres:"+secret+"@", 1)
			}
			args := []string{"--db", dsn, "--plan", plan, "--nats", natsURL}
			must(t, exitOK, append(args, "moves", "advance", "cents")...)
			base := startServe(t, args...)

			// The same document as the command line's, byte for byte.
			code, body := get(t, base+"api/status")
			want, _, _ := tandem(t, append(args, "--json", "status")...)
			if code != http.StatusOK || body != want {
				t.Fatalf("/api/status (%d):\n%s\nwant tandem status --json:\n%s", code, body, want)
			}

			_, metrics := get(t, base+"metrics")
			for _, line := range []string{
				`tandem_services_floor{cluster="` + reg.Cluster() + `"} 41`,
				`tandem_services_instances{cluster="` + reg.Cluster() + `",release="41",state="up"} 2`,
				`tandem_services_cap_minor{api="shop",cluster="` + reg.Cluster() + `",major="1"} 1`,
				`tandem_dualwrite_phase{move="cents"} 1`,
				`tandem_dualwrite_gate_open{move="cents",to="read-new"} 0`,
				`tandem_dualwrite_blockers{kind="instances",move="cents"} 1`,
				`tandem_dualwrite_blockers{kind="backfill",move="cents"} 1`,
				`tandem_dualwrite_backfill_rows_done{direction="backfill",move="cents"} 0`,
			} {
				if !strings.Contains(metrics, line+"\n") {
					t.Errorf("/metrics lacks %s", line)
				}
			}
			if t.Failed() {
				t.Logf("/metrics:\n%s", metrics)
			}

			_, page := get(t, base)
			for _, s := range []string{`data-floor="41"`, `data-move="cents" data-phase="write-both"`, `data-release="41"`,
				`data-kind="instances"`, `<code class="cmd">tandem moves backfill cents</code>`, dialect.RedactDSN(dsn)} {
				if !strings.Contains(page, s) {
					t.Errorf("the page lacks %s", s)
				}
			}

			_, css := get(t, base+"static/style.css")
			_, js := get(t, base+"static/live.js")
			for what, out := range map[string]string{"/": page, "/api/status": body, "/metrics": metrics, "/static/style.css": css, "/static/live.js": js} {
				if leak := leaks(out, secret); leak != "" {
					t.Errorf("%s shows %q of the DSN's password", what, leak)
				}
			}
			if !strings.Contains(css, ".move") || !strings.Contains(js, "EventSource") {
				t.Error("the embedded assets are not served")
			}

			for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
				req, _ := http.NewRequest(m, base+"api/status", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Errorf("%s /api/status: %d, want 405", m, resp.StatusCode)
				}
			}

			// The event stream: the live part now, then again once web-2
			// acknowledges write-both (a registry notice), without the
			// instances blocker.
			resp, err := http.Get(base + "events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
				t.Fatalf("/events is %s", ct)
			}
			events := make(chan string, 16)
			go func() {
				defer close(events)
				sc := bufio.NewScanner(resp.Body)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				var ev strings.Builder
				for sc.Scan() {
					line := sc.Text()
					if line == "" {
						events <- ev.String()
						ev.Reset()
						continue
					}
					ev.WriteString(strings.TrimPrefix(line, "data: "))
					ev.WriteString("\n")
				}
			}()
			next := func(what string, ok func(string) bool) {
				t.Helper()
				timeout := time.After(30 * time.Second)
				for {
					select {
					case ev, open := <-events:
						if !open {
							t.Fatalf("the event stream ended before %s", what)
						}
						if ok(ev) {
							return
						}
					case <-timeout:
						t.Fatalf("no event with %s within 30s", what)
					}
				}
			}
			next("the move", func(ev string) bool {
				return strings.HasPrefix(ev, "event: status\n") && strings.Contains(ev, `data-kind="instances"`)
			})
			for _, id := range []string{"web-1", "web-2"} {
				if err := reg.Heartbeat(ctx, id, services.Heartbeat{Phases: map[string]string{"cents": "write-both"}}); err != nil {
					t.Fatal(err)
				}
			}
			next("the instances blocker cleared", func(ev string) bool {
				if leak := leaks(ev, secret); leak != "" {
					t.Errorf("an event shows %q of the DSN's password", leak)
				}
				return strings.HasPrefix(ev, "event: status\n") && strings.Contains(ev, `data-move="cents"`) && !strings.Contains(ev, `data-kind="instances"`)
			})
			// The registry becomes unreadable: the page is told its view
			// may be old, and nothing of the error.
			db.MustExec(`DROP TABLE ` + services.InstancesTable)
			next("the view marked stale", func(ev string) bool {
				if strings.HasPrefix(ev, "event: stale\n") && strings.Contains(ev, "tandem_services") {
					t.Errorf("the stale event shows the error: %s", ev)
				}
				return strings.HasPrefix(ev, "event: stale\n")
			})
		})
	}
}

var demoWatchRE = regexp.MustCompile(`watch the rollout at (http://[0-9.:]+/)`)

// TestDemoServe: tandem demo --serve prints where the page is and serves
// the demo's rollout there while it runs.
func TestDemoServe(t *testing.T) {
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"demo", "--fast", "--serve", "127.0.0.1:0"}, &out, &errOut)
	}()
	var base string
	served := 0
	for {
		select {
		case code := <-done:
			if code != exitOK {
				t.Fatalf("demo --serve exited %d:\n%s%s", code, out.String(), errOut.String())
			}
			if base == "" || served == 0 {
				t.Fatalf("the demo ran (%q), but its page answered no /api/status with the demo's moves:\n%s", base, out.String())
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if base == "" {
			if m := demoWatchRE.FindStringSubmatch(out.String()); m != nil {
				base = m[1]
			}
			continue
		}
		resp, err := http.Get(base + "api/status")
		if err != nil {
			continue // the demo may have ended meanwhile
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"items_price_cents"`) {
			served++
		}
	}
}
