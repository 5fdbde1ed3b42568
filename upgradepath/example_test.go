package upgradepath_test

import (
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/upgradepath"
)

// A move whose releases ship one phase each, two instances on release 41:
// release 42 is skipped (43 ships read-new, one past write-both), and so is
// 44 once the move is at read-new (45 ships contracted, one past
// write-new).
func ExamplePlan() {
	m := move.Move{Name: "price_cents", Table: "items", Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents"},
		Releases: move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}}
	p, err := upgradepath.Plan(upgradepath.Input{
		Target:    45,
		Moves:     []upgradepath.Move{{Move: m, Phase: move.Legacy}},
		Instances: []services.Instance{{ID: "web-1", Release: 41}, {ID: "web-2", Release: 41}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, s := range p.Steps {
		mark := ""
		if s.Irreversible {
			mark = "  (irreversible)"
		}
		fmt.Printf("%d. %s%s\n", i+1, s.Command, mark)
	}
	// Output:
	// 1. tandem moves advance price_cents --to write-both
	// 2. tandem wait --floor 43
	// 3. tandem moves backfill price_cents
	// 4. tandem moves verify price_cents
	// 5. tandem moves advance price_cents --to read-new
	// 6. tandem moves advance price_cents --to write-new
	// 7. tandem wait --floor 45
	// 8. tandem moves finalize price_cents  (irreversible)
	// 9. tandem moves advance price_cents --to contracted  (irreversible)
}

// The table of the same move: which releases may run at each phase.
func ExampleCompatibility() {
	m := move.Move{Name: "price_cents", Releases: move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}}
	t := upgradepath.Compatibility([]move.Move{m}, nil)
	line := fmt.Sprintf("%-11s", "phase")
	for _, c := range t.Columns {
		line += fmt.Sprintf("%-8s", c.Label())
	}
	fmt.Println(strings.TrimSpace(line))
	for _, r := range t.Moves[0].Rows {
		line = fmt.Sprintf("%-11s", r.Phase)
		for _, c := range r.Cells {
			line += fmt.Sprintf("%-8s", c)
		}
		fmt.Println(strings.TrimSpace(line))
	}
	// Output:
	// phase      <= 41   42      43      44      >= 45
	// legacy     yes     yes     yes     yes     yes
	// write-both running yes     yes     yes     yes
	// read-new   no      yes     yes     yes     yes
	// write-new  no      no      yes     yes     yes
	// contracted no      no      no      yes     yes
}
