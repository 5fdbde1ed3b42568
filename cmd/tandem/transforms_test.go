package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// transformPlan declares one move of products.label with triggers, whose
// forward transform is %s: a transform that slips through would first add
// the column, then fail (or silently differ) installing the triggers.
const transformPlan = `version: 1
moves:
  - name: label_x
    table: %s
    key: [id]
    old: %s
    new: {column: label_x, type: "VARCHAR(80)"}
    forward: {sql: %s}
    backward: {sql: "{value}"}
    triggers: true
`

// TestEngineRefusesTransforms feeds transforms that hide a comment, a
// second statement or a tail through moves apply and moves advance on
// every engine: each is refused as bad input (exit 2) with a typed error,
// before anything is written, and the database dump is unchanged.
func TestEngineRefusesTransforms(t *testing.T) {
	cases := []struct {
		name, expr string
		engine     bool // refused by the engine check (static rules let it through)
	}{
		{"hash comment", `{value}) # (`, true},
		{"hash comment hiding a tail that parses", `{value}) AS tandem_v, (1) AS tandem_check FROM products WHERE 1=0 # (`, true},
		{"hash comment at the end", `UPPER({value}) # `, true},
		{"dash comment", `{value} -- x`, false},
		{"block comment", `{value} /* x */`, false},
		{"second statement", `{value}); DELETE FROM products; SELECT (1`, false},
		{"not an expression", `{value} +`, true},
		{"unknown column", `{value} || nosuch`, true},
	}
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			ctx := context.Background()
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					plan := writeFile(t, "plan.yaml", fmt.Sprintf(transformPlan, "products", "label", strconv.Quote(c.expr)))
					before := dbtest.Dump(t, db)
					for _, args := range [][]string{
						{"moves", "apply"},
						{"moves", "advance", "label_x"},
						{"moves", "advance", "label_x", "--dry-run"},
					} {
						out, errOut, code := tandem(t, append([]string{"--db", dsn, "--plan", plan}, args...)...)
						if code != exitBadInput || !strings.Contains(errOut, "Forward.SQL") {
							t.Fatalf("%v: exit %d, want %d\n%s%s", args, code, exitBadInput, out, errOut)
						}
						if after := dbtest.Dump(t, db); after != before {
							t.Fatalf("%v changed the database:\nbefore:\n%s\nafter:\n%s", args, before, after)
						}
					}
					m, err := dualwrite.LoadPlan(plan)
					if err == nil {
						_, err = dualwrite.New(ctx, db, m.Moves)
					}
					var ve *move.ValidationError
					if !errors.As(err, &ve) || !errors.Is(err, move.ErrInvalid) || ve.Field != "Forward.SQL" {
						t.Fatalf("want a *move.ValidationError for Forward.SQL, got %v", err)
					}
					if c.engine != errors.Is(err, sqldialect.ErrBadExpression) {
						t.Fatalf("refused by the engine: %v, want %v: %v", errors.Is(err, sqldialect.ErrBadExpression), c.engine, err)
					}
					if after := dbtest.Dump(t, db); after != before {
						t.Fatalf("dualwrite.New changed the database")
					}
				})
			}
			// The check refuses only what is wrong: a sound transform,
			// with both forms of a value (column and bound), goes through.
			plan := writeFile(t, "plan.yaml", fmt.Sprintf(transformPlan, "products", "label", strconv.Quote(`UPPER({value})`)))
			must(t, exitOK, "--db", dsn, "--plan", plan, "moves", "advance", "label_x")
			must(t, exitOK, "--db", dsn, "triggers", "check", "label_x")
		})
	}
}

// TestMissingTableOrColumnIsBadInput: an advance of a move whose table or
// old column does not exist is bad input (exit 2) naming it and the next
// command, and writes nothing: no ledger row, no definition, no step.
func TestMissingTableOrColumnIsBadInput(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn, db := ledgerDB(t, e)
			for _, c := range []struct{ table, old, names string }{
				{"nosuch", "label", "nosuch: table does not exist"},
				{"products", "nocol", "products.nocol: old column does not exist"},
			} {
				plan := writeFile(t, "plan.yaml", fmt.Sprintf(transformPlan, c.table, c.old, strconv.Quote(`UPPER({value})`)))
				before := dbtest.Dump(t, db)
				for _, args := range [][]string{{"moves", "advance", "label_x"}, {"moves", "apply"}} {
					out, errOut, code := tandem(t, append([]string{"--db", dsn, "--plan", plan}, args...)...)
					if code != exitBadInput || !strings.Contains(errOut, c.names) || !strings.Contains(errOut, "tandem moves") {
						t.Fatalf("%v on %s.%s: exit %d, want %d\n%s%s", args, c.table, c.old, code, exitBadInput, out, errOut)
					}
					if after := dbtest.Dump(t, db); after != before {
						t.Fatalf("%v changed the database:\nbefore:\n%s\nafter:\n%s", args, before, after)
					}
				}
			}
		})
	}
}
