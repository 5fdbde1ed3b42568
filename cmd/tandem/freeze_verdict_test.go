package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// Waiting cannot bring an acknowledgement from a missing instance, nor
// from one that goes on heartbeating without following freezes: freeze,
// thaw and wait say so at once (exit 5, naming the delete) instead of
// waiting out their --timeout, and status agrees.
func TestFreezeVerdictsWaitingCannotFix(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	const timeout = "90s" // a verdict that waited it out fails below
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			t.Run("a missing instance", func(t *testing.T) {
				dsn, db := ledgerDB(t, e)
				registerAt(t, db, "web-1", "legacy", time.Now().Add(-10*time.Minute))
				start := time.Now()
				_, errOut, code := tandem(t, "--db", dsn, "--json", "freeze", "--all", "--reason", "restore", "--timeout", timeout)
				if code != exitAttention || time.Since(start) > 60*time.Second {
					t.Fatalf("freeze: exit %d after %s, want %d at once\n%s", code, time.Since(start), exitAttention, errOut)
				}
				if !strings.Contains(errOut, "without waiting longer") || !strings.Contains(errOut, "tandem services delete web-1") {
					t.Fatalf("freeze: %s", errOut)
				}
				_, errOut, code = tandem(t, "--db", dsn, "wait", "--frozen", "--timeout", timeout)
				if code != exitAttention {
					t.Fatalf("wait --frozen: exit %d, want %d\n%s", code, exitAttention, errOut)
				}
			})
			t.Run("an instance that does not follow freezes", func(t *testing.T) {
				dsn, db := ledgerDB(t, e)
				now := time.Now()
				reg, err := services.New(context.Background(), db, services.WithClock(func() time.Time { return now }))
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				if err := reg.Register(ctx, services.Instance{ID: "old-1", Service: "shop", Host: "h-old-1", Release: 1}); err != nil {
					t.Fatal(err)
				}
				must(t, exitOK, "--db", dsn, "freeze", "--all", "--reason", "restore", "--no-wait")
				// Still up, acknowledging nothing: its heartbeats come
				// without a freeze state, longer than --missing-after.
				now = time.Now().Add(5 * time.Second)
				if err := reg.Heartbeat(ctx, "old-1", services.Heartbeat{}); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				out, errOut, code := tandem(t, "--db", dsn, "--missing-after", "2s", "--json", "wait", "--frozen", "--timeout", timeout)
				if code != exitAttention || time.Since(start) > 60*time.Second {
					t.Fatalf("wait --frozen: exit %d after %s, want %d at once\n%s%s", code, time.Since(start), exitAttention, out, errOut)
				}
				lines := strings.Split(strings.TrimSpace(out), "\n")
				var res struct {
					Event, Outcome string
					State          struct {
						Freeze struct {
							Pending []struct {
								ID          string  `json:"id"`
								NextCommand *string `json:"next_command"`
								Message     string
							}
						}
					}
				}
				if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil || res.Event != "result" || res.Outcome != "attention" {
					t.Fatalf("result %q (%v)", lines[len(lines)-1], err)
				}
				if p := res.State.Freeze.Pending; len(p) != 1 || p[0].NextCommand == nil || *p[0].NextCommand != "tandem services delete old-1" || !strings.Contains(p[0].Message, "does not follow freezes") {
					t.Fatalf("pending %+v", p)
				}
				// With the default --missing-after it is only late: exit 3.
				if _, _, code := tandem(t, "--db", dsn, "status"); code != exitBlocked {
					t.Fatalf("status with the default --missing-after: exit %d, want %d", code, exitBlocked)
				}
				out, _, code = tandem(t, "--db", dsn, "--missing-after", "2s", "status")
				if code != exitAttention || !strings.Contains(out, "tandem services delete old-1") {
					t.Fatalf("status: exit %d, want %d\n%s", code, exitAttention, out)
				}
			})
		})
	}
}
