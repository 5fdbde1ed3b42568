package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// `tandem services list --limit` pages the registry: each text page ends
// with the command of the next one, --json carries the cursor in "next"
// ("" on the last page), filters keep to their instances, and a bad cursor
// or limit is refused as bad input (exit 2) naming the command to start
// again.
func TestServicesListPages(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.DSN(t, dialect.SQLite)
	db, err := dialect.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := schema.Ensure(ctx, db, tandemTables()); err != nil {
		t.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 25 {
		svc := map[bool]string{true: "volume", false: "image"}[i%5 != 0]
		if err := reg.Register(ctx, services.Instance{ID: fmt.Sprintf("i%02d", i), Service: svc, Host: "h", Release: 41 + int64(i%2)}); err != nil {
			t.Fatal(err)
		}
	}
	defer reg.Close()

	// JSON pages of 7 volume instances at release 41: 10 of them.
	var ids []string
	after := ""
	for page := 0; ; page++ {
		args := []string{"--db", dsn, "services", "list", "--json", "--service", "volume", "--release", "41", "--limit", "7"}
		if after != "" {
			args = append(args, "--after", after)
		}
		out, errOut, code := tandem(t, args...)
		if code != 0 {
			t.Fatalf("page %d: exit %d: %s", page, code, errOut)
		}
		var doc struct {
			Schema    string `json:"schema"`
			Instances []struct {
				ID      string `json:"id"`
				Service string `json:"service"`
				Release int64  `json:"release"`
			} `json:"instances"`
			Next *string `json:"next"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.Schema == "" || doc.Next != nil && *doc.Next == "" {
			t.Fatalf("page %d: %v\n%s", page, err, out)
		}
		for _, in := range doc.Instances {
			if in.Service != "volume" || in.Release != 41 {
				t.Fatalf("page %d holds %+v", page, in)
			}
			ids = append(ids, in.ID)
		}
		if doc.Next == nil { // the last page
			break
		}
		after = *doc.Next
	}
	if len(ids) != 10 || ids[0] != "i02" || ids[9] != "i24" {
		t.Fatalf("pages hold %v, want the 10 volume instances of release 41 in order", ids)
	}

	// A text page names the command of the next page, filters kept.
	out, _, code := tandem(t, "--db", dsn, "services", "list", "--state", "up", "--limit", "20")
	if code != 0 || !strings.Contains(out, "More instances: tandem services list --state up --limit 20 --after ") {
		t.Fatalf("text page: exit %d\n%s", code, out)
	}
	next := out[strings.LastIndex(out, "--after ")+len("--after "):]
	out, _, code = tandem(t, "--db", dsn, "services", "list", "--state", "up", "--limit", "20", "--after", strings.TrimSpace(next))
	if code != 0 || strings.Contains(out, "More instances") || strings.Count(out, "\ni") != 5 {
		t.Fatalf("last text page: exit %d\n%s", code, out)
	}
	// An empty page is an empty list, not null.
	out, _, code = tandem(t, "--db", dsn, "services", "list", "--json", "--state", "missing")
	if code != 0 || !strings.Contains(out, `"instances": []`) || !strings.Contains(out, `"next": null`) {
		t.Fatalf("empty page: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"--after", "garbage"},
		{"--limit", "-3"},
		{"--state", "sleeping"},
		{"--release", "-1"},
	} {
		_, errOut, code := tandem(t, append([]string{"--db", dsn, "services", "list"}, args...)...)
		if code != exitBadInput || !strings.Contains(errOut, "tandem services list") {
			t.Errorf("%v: exit %d, %s", args, code, errOut)
		}
	}
}
