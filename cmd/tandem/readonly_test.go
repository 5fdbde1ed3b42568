package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/services"
)

// TestReadOnlyDatabase opens a SQLite file read-only (mode=ro, and the
// file's mode 0444 where the process is not root, which ignores it): every
// read command answers as on the writable database, not "cannot reach",
// and a command that writes fails saying the database is read-only (exit
// 2), the file unchanged.
func TestReadOnlyDatabase(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	dsn, db := ledgerDB(t, dbtest.Engine{Name: dialect.SQLite})
	plan := writeFile(t, "plan.yaml", fmt.Sprintf(transformPlan, "products", "label", strconv.Quote(`UPPER({value})`)))
	must(t, exitOK, "--db", dsn, "--plan", plan, "moves", "advance", "label_x")
	reg, err := services.New(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(context.Background(), services.Instance{ID: "web-1", Service: "shop", Release: 2,
		Phases: map[string]string{"label_x": "write-both"}}); err != nil {
		t.Fatal(err)
	}
	reads := [][]string{
		{"status"}, {"status", "--json"}, {"moves", "list"}, {"moves", "show", "label_x"}, {"services", "list"},
		{"services", "floor"}, {"triggers", "check", "label_x"}, {"moves", "sql", "label_x", "--phase", "write-both", "--dialect", "sqlite"},
		{"moves", "advance", "label_x", "--dry-run"},
	}
	want := make([]string, len(reads))
	codes := make([]int, len(reads))
	for i, args := range reads {
		var errOut string
		want[i], errOut, codes[i] = tandem(t, append([]string{"--db", dsn}, args...)...)
		if codes[i] != exitOK && codes[i] != exitBlocked && codes[i] != exitAttention {
			t.Fatalf("%v on the writable database: exit %d\n%s", args, codes[i], errOut)
		}
	}
	path := strings.TrimPrefix(dsn, "sqlite://")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(path, 0o644) })
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ro := range []string{dsn + "?mode=ro", dsn} {
		if ro == dsn && os.Geteuid() == 0 {
			continue // root writes a 0444 file: mode=ro is the read-only case
		}
		for i, args := range reads {
			out, errOut, code := tandem(t, append([]string{"--db", ro}, args...)...)
			// Same answer (ages and times move on between the runs).
			if code != codes[i] || len(out) == 0 || strings.Count(out, "\n") != strings.Count(want[i], "\n") {
				t.Fatalf("%v read-only (%s): exit %d, want %d\n%s%s\nwant:\n%s", args, ro, code, codes[i], out, errOut, want[i])
			}
		}
		for _, args := range [][]string{
			{"moves", "backfill", "label_x"},
			{"services", "delete", "web-1", "--force"},
		} {
			out, errOut, code := tandem(t, append([]string{"--db", ro}, args...)...)
			if code != exitBadInput || !strings.Contains(errOut, "is read-only") || strings.Contains(errOut, "cannot reach") {
				t.Fatalf("%v read-only: exit %d, want %d saying read-only\n%s%s", args, code, exitBadInput, out, errOut)
			}
		}
	}
	if after, err := os.ReadFile(path); err != nil || string(after) != string(before) {
		t.Fatalf("the read-only file changed (%v)", err)
	}
}
