package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

func tandem(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestCLIOnEveryEngine(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := dbtest.DSN(t, e.Name)
			out, errOut, code := tandem(t, "--db", dsn, "schema", "ensure", "--dry-run")
			if code != 0 || !strings.Contains(out, "Would migrate table 'tandem_services' from version 0 to 5") || !strings.Contains(out, "CREATE TABLE") {
				t.Fatalf("dry run: code %d\n%s%s", code, out, errOut)
			}
			// The dry run changed nothing: the registry still has no tables
			// (exit 2: tandem's tables are not ensured). On SQLite the file
			// itself does not exist yet.
			if _, errOut, code := tandem(t, "--db", dsn, "services", "list"); (code != exitBadInput && code != exitFailed && code != exitUnreachable) || !strings.Contains(errOut, "tandem schema ensure") {
				t.Fatalf("list before ensure: code %d, %s", code, errOut)
			}
			out, _, code = tandem(t, "--db", dsn, "schema", "ensure")
			if code != 0 || !strings.Contains(out, "Migrated table 'tandem_services' from version 0 to 5") {
				t.Fatalf("ensure: %d %s", code, out)
			}
			out, _, _ = tandem(t, "--db", dsn, "schema", "ensure")
			if !strings.Contains(out, "Table 'tandem_services' is up to date (version 5)") {
				t.Fatalf("second ensure: %s", out)
			}

			ctx := context.Background()
			db, err := dialect.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			reg, err := services.New(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, in := range []services.Instance{
				{ID: "a", Service: "volume", Release: 41},
				{ID: "b", Service: "volume", Release: 42},
			} {
				if err := reg.Register(ctx, in); err != nil {
					t.Fatal(err)
				}
			}
			out, _, code = tandem(t, "--db", dsn, "services", "floor")
			if code != 0 || !strings.Contains(out, "Floor: release 41") || !strings.Contains(out, "  a ") {
				t.Fatalf("floor: %d\n%s", code, out)
			}
			out, _, code = tandem(t, "--db", dsn, "--json", "services", "floor")
			var fv struct {
				Floor struct {
					Release int64 `json:"release"`
					Holders []struct {
						ID string `json:"id"`
					} `json:"holders"`
				} `json:"floor"`
			}
			if err := json.Unmarshal([]byte(out), &fv); err != nil || code != 0 || fv.Floor.Release != 41 || fv.Floor.Holders[0].ID != "a" {
				t.Fatalf("floor --json: %v %s", err, out)
			}
			out, errOut, code = tandem(t, "--db", dsn, "services", "delete", "a")
			if code != exitBadInput || !strings.Contains(errOut, "tandem services delete a --force") || !strings.Contains(errOut, "stops serving within one heartbeat") {
				t.Fatalf("delete of an up instance without --force: %d %s", code, errOut)
			}
			out, _, code = tandem(t, "--db", dsn, "services", "delete", "a", "--force")
			if code != 0 || !strings.Contains(out, "The floor rose from release 41 to 42") || !strings.Contains(out, "is fenced at its next heartbeat") {
				t.Fatalf("delete: %d %s", code, out)
			}
			out, _, code = tandem(t, "--db", dsn, "--json", "services", "list")
			var doc struct {
				Instances []struct {
					ID string `json:"id"`
				} `json:"instances"`
			}
			err = json.Unmarshal([]byte(out), &doc)
			if list := doc.Instances; err != nil || code != 0 || len(list) != 1 || list[0].ID != "b" {
				t.Fatalf("list --json: %v %s", err, out)
			}
			out, _, code = tandem(t, "--db", dsn, "status")
			if code != 0 || !strings.Contains(out, "Floor: release 42") {
				t.Fatalf("status: %d %s", code, out)
			}
			// The last instance gone, there is no floor (not "release 0").
			out, _, code = tandem(t, "--db", dsn, "services", "delete", "b", "--force")
			if code != 0 || !strings.Contains(out, "There is no floor now: no instance is registered (it was release 42).") || strings.Contains(out, "to 0") {
				t.Fatalf("delete of the last instance: %d %s", code, out)
			}
		})
	}
}

func TestCLIExitCodesAndRedaction(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"malformed DSN", []string{"--db", "oracle://u:pw@h/x", "status"}, exitBadInput, "unknown engine"},
		{"unreachable database", []string{"--db", "postgres://u:topsecret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", "status"}, exitUnreachable, "cannot reach database"},
		{"unknown flag", []string{"status", "--frobnicate"}, exitBadInput, "unknown flag"},
		{"unknown command with --help", []string{"frobnicate", "--help"}, exitBadInput, "unknown command"},
		{"unknown subcommand with --help", []string{"moves", "frobnicate", "-h"}, exitBadInput, "unknown command"},
		{"help for an unknown command", []string{"help", "frobnicate"}, exitBadInput, "unknown command \"frobnicate\" for \"tandem\""},
		{"help for an unknown subcommand", []string{"help", "moves", "frobnicate"}, exitBadInput, "tandem moves has: "},
		{"missing argument", []string{"--db", filepath.Join(dir, "x.db"), "services", "delete"}, exitBadInput, "accepts 1 arg"},
		{"mistyped SQLite path", []string{"--db", filepath.Join(dir, "y.db"), "services", "delete", "ghost"}, exitUnreachable, "does not exist"},
		{"dry run on a new path", []string{"--db", filepath.Join(dir, "y.db"), "schema", "ensure", "--dry-run"}, exitOK, "does not exist yet"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := tandem(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr %q does not say %q", errOut, tc.want)
			}
			if strings.Contains(out+errOut, "topsecret") || strings.Contains(out+errOut, ":pw@") {
				t.Fatalf("password shown: %s%s", out, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "y.db")); err == nil {
		t.Fatal("a read-only command created the SQLite file")
	}
	// An unknown instance on an initialised database is bad input.
	db := filepath.Join(dir, "z.db")
	if _, _, code := tandem(t, "--db", db, "schema", "ensure"); code != 0 {
		t.Fatal("ensure failed")
	}
	if _, errOut, code := tandem(t, "--db", db, "services", "delete", "ghost"); code != exitBadInput || !strings.Contains(errOut, "ghost") {
		t.Fatalf("delete ghost: %d %s", code, errOut)
	}
}
