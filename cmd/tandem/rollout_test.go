package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/demo"
	"github.com/tandem-go/tandem/services"
)

// TestRolloutScript builds tandem and runs testdata/rollout.sh, a CI job
// that drives the demo's two moves from legacy to contracted deciding
// only from exit codes and --json, while a fleet of three instances rolls
// from release 41 to 44.
func TestRolloutScript(t *testing.T) {
	for _, tool := range []string{"bash", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			// .ci/run installs jq and fails on this marker.
			t.Skipf("TANDEM-TOOL-SKIPPED: %s is not installed (apt-get install -y %s)", tool, tool)
		}
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "tandem")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The fleet is this test binary run as TestFleetChild.
	fleet := filepath.Join(dir, "fleet")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("#!/bin/sh\nTANDEM_FLEET_CHILD=1 exec %q -test.run='^TestFleetChild$' -- \"$@\"\n", self)
	if err := os.WriteFile(fleet, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	plan := filepath.Join(dir, "plan.yaml")
	writeDemoPlan(t, plan)
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := dbtest.DSN(t, e.Name)
			db, err := dialect.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, table := range []string{"items", "catalog"} {
				ddl, err := inventory.CreateTableSQL(table)
				if err != nil {
					t.Fatal(err)
				}
				db.MustExec(ddl)
				for i := range 50 {
					db.MustExec(db.Rebind(`INSERT INTO `+table+` (id, name, quantity, price) VALUES (?, ?, ?, ?)`), fmt.Sprintf("%s-%02d", table, i), "thing", i, i+1)
				}
			}
			cmd := exec.Command("bash", filepath.Join("testdata", "rollout.sh"))
			backups := t.TempDir()
			cmd.Env = append(os.Environ(), "TANDEM="+bin, "FLEET="+fleet, "PLAN="+plan, "TANDEM_DB="+dsn, "BACKUPS="+backups, "TANDEM_PLAN=", "TANDEM_NATS=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("rollout.sh: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "rollout: done:") {
				t.Fatalf("rollout.sh did not finish:\n%s", out)
			}
			// The data came along: every price is in price_cents (price
			// itself is dropped).
			for _, table := range []string{"items", "catalog"} {
				var rows []struct {
					ID    string        `db:"id"`
					Cents sql.NullInt64 `db:"price_cents"`
				}
				if err := db.Select(&rows, `SELECT id, price_cents FROM `+table); err != nil {
					t.Fatal(err)
				}
				for _, r := range rows {
					i, _ := strconv.Atoi(r.ID[len(r.ID)-2:])
					if !r.Cents.Valid || r.Cents.Int64 != int64(i+1)*100 {
						t.Fatalf("%s %s: price_cents %v, want %d", table, r.ID, r.Cents, (i+1)*100)
					}
				}
				if len(rows) != 50 {
					t.Fatalf("%s: %d rows", table, len(rows))
				}
			}
			// Each contract took a copy first, recorded in the ledger: it
			// restores to the database as it was, the old column and its
			// values still there.
			listed, errOut, code := tandem(t, "--json", "--db", dsn, "moves", "list")
			var doc struct {
				Moves []struct {
					Name    string `json:"name"`
					From    string `json:"from"`
					Backups []struct {
						Before string `json:"before"`
						Path   string `json:"path"`
						Bytes  int64  `json:"bytes"`
					} `json:"backups"`
				} `json:"moves"`
			}
			if err := json.Unmarshal([]byte(listed), &doc); err != nil || code != exitOK || len(doc.Moves) != 2 {
				t.Fatalf("moves list: exit %d %v\n%s%s", code, err, listed, errOut)
			}
			for _, m := range doc.Moves {
				if len(m.Backups) != 1 || m.Backups[0].Before != "contracted" || filepath.Dir(m.Backups[0].Path) != backups || m.Backups[0].Bytes == 0 {
					t.Fatalf("%s: backups %+v", m.Name, m.Backups)
				}
				table, old, _ := strings.Cut(m.From, ".")
				var n int
				restored := dbtest.Restore(t, e.Name, m.Backups[0].Path)
				if err := restored.Get(&n, `SELECT COUNT(*) FROM `+table+` WHERE `+old+` IS NOT NULL`); err != nil || n != 50 {
					t.Fatalf("%s: the backup has %d rows with %s (%v), want 50", m.Name, n, m.From, err)
				}
			}
			t.Logf("%s", out)
		})
	}
}

// writeDemoPlan writes the demo's moves as a plan file.
func writeDemoPlan(t *testing.T, path string) {
	t.Helper()
	body, err := yaml.Marshal(map[string]any{"version": dualwrite.PlanVersion, "moves": demo.Moves()})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, body, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFleetChild is the rollout script's deploy tool: "roll R" restarts
// the three instances at release R, "sync" makes each heartbeat. Each
// reports, for every move, the phase it acts on: what the ledger says,
// capped by what its release ships, as a real instance's tracker does.
func TestFleetChild(t *testing.T) {
	if os.Getenv("TANDEM_FLEET_CHILD") == "" {
		t.Skip("the deploy tool of TestRolloutScript")
	}
	if err := fleet(context.Background(), os.Getenv("TANDEM_DB"), flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func fleet(ctx context.Context, dsn string, args []string) error {
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	reg, err := services.New(ctx, db)
	if err != nil {
		return err
	}
	mg, err := dualwrite.Load(ctx, db, nil)
	if err != nil {
		return err
	}
	phases := func(release int64) (map[string]string, error) {
		out := map[string]string{}
		for _, m := range mg.Moves() {
			p, err := mg.Phase(ctx, m.Name)
			if err != nil {
				return nil, err
			}
			out[m.Name] = dualwrite.Effective(p, m.Releases.Highest(release)).String()
		}
		return out, nil
	}
	ids := []string{"inventory-1", "inventory-2", "inventory-3"}
	switch {
	case len(args) == 2 && args[0] == "roll":
		release, err := strconv.ParseInt(args[1], 10, 64)
		if err != nil {
			return err
		}
		ph, err := phases(release)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := reg.Register(ctx, services.Instance{ID: id, Service: "inventory", Host: "h-" + id, Release: release, Phases: ph}); err != nil {
				return err
			}
		}
		return nil
	case len(args) == 1 && args[0] == "sync":
		ins, err := reg.List(ctx, false)
		if err != nil {
			return err
		}
		for _, in := range ins {
			ph, err := phases(in.Release)
			if err != nil {
				return err
			}
			if err := reg.Heartbeat(ctx, in.ID, services.Heartbeat{Phases: ph}); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("usage: fleet roll RELEASE | fleet sync (got %q)", args)
}
