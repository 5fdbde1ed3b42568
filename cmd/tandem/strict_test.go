package main

import (
	"strings"
	"testing"

	"github.com/tandem-go/tandem/internal/dbtest"
)

// TestStrictFlags: every out-of-range number is refused where it enters,
// with exit 2 and a message naming the flag, and the database (rows,
// schema, triggers) is exactly as before, on every engine.
func TestStrictFlags(t *testing.T) {
	t.Setenv("TANDEM_PLAN", "")
	plan := writeFile(t, "plan.yaml", ledgerPlan)
	big := writeFile(t, "big.yaml", ledgerPlan+"#"+strings.Repeat("x", 16<<20)+"\n")
	base := []struct {
		args []string
		want string
	}{
		{[]string{"moves", "advance", "cents_wb", "--release", "-5"}, "--release -5"},
		{[]string{"moves", "apply", "--release", "-5"}, "--release -5"},
		{[]string{"moves", "backfill", "cents_wb", "--batch", "-5"}, "BatchSize initial = -5"},
		{[]string{"moves", "backfill", "cents_wb", "--rate", "-1"}, "RateLimit = -1"},
		{[]string{"moves", "backfill", "cents_wb", "--rate", "NaN"}, "RateLimit = NaN"},
		{[]string{"moves", "backfill", "cents_wb", "--rate", "+Inf"}, "RateLimit = +Inf"},
		{[]string{"moves", "backfill", "cents_wb", "--target-batch-time", "-5s"}, "TargetBatchTime = -5s"},
		{[]string{"moves", "verify", "cents_wb", "--list", "-1"}, "ListMismatches = -1"},
		{[]string{"moves", "backfill", "cents_wb", "--batch", "x"}, "invalid argument"},
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			cases := append(base[:0:0], base...)
			// A plan over the size limit is refused whole, naming the limit.
			for _, args := range [][]string{{"moves", "apply"}, {"moves", "advance", "cents_wb"}, {"moves", "backfill", "cents_wb"}} {
				cases = append(cases, struct {
					args []string
					want string
				}{append([]string{"--plan", big}, args...), "larger than the 16 MiB limit"})
			}
			for _, tc := range cases {
				before := dbtest.Dump(t, db)
				out, errOut, code := tandem(t, append([]string{"--db", dsn, "--plan", plan}, tc.args...)...)
				if code != exitBadInput || !strings.Contains(errOut, tc.want) {
					t.Errorf("%v: exit %d, want %d and %q\n%s%s", tc.args, code, exitBadInput, tc.want, out, errOut)
				}
				if after := dbtest.Dump(t, db); after != before {
					t.Fatalf("%v refused but changed the database:\nbefore:\n%s\nafter:\n%s", tc.args, before, after)
				}
			}
		})
	}
}
