package dualwrite_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestLoadPlan(t *testing.T) {
	p, err := dualwrite.LoadPlan("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Moves) != 2 {
		t.Fatalf("%d moves", len(p.Moves))
	}
	a, b := p.Moves[0], p.Moves[1]
	if a.Releases.ReadNew != 43 || a.Forward.Dialects[dialect.MySQL] == "" || a.New.Type.SQL != "BIGINT" {
		t.Errorf("first move: %+v", a)
	}
	if !b.CrossTable() || !b.Triggers || b.New.Type.For(dialect.MySQL) != "LONGTEXT" || b.New.KeyType[0].SQL != "BIGINT" {
		t.Errorf("second move: %+v", b)
	}
}

func TestParsePlanErrors(t *testing.T) {
	tests := map[string]string{
		"empty":         "",
		"version":       "version: 2\nmoves: []\n",
		"unknown field": "version: 1\nmoves:\n  - name: a\n    tabel: t\n",
		"invalid move":  "version: 1\nmoves:\n  - {name: a, table: t, key: [id], old: x, new: {column: x}}\n",
		"bad ident":     "version: 1\nmoves:\n  - {name: a, table: \"t;drop\", key: [id], old: x, new: {column: y}}\n",
		"duplicate":     "version: 1\nmoves:\n  - {name: a, table: t, key: [id], old: x, new: {column: y}}\n  - {name: a, table: t, key: [id], old: x, new: {column: z}}\n",
		"not yaml":      "version: [1\n",
	}
	for name, src := range tests {
		_, err := dualwrite.ParsePlan(strings.NewReader(src))
		var pe *dualwrite.PlanError
		if !errors.As(err, &pe) || !errors.Is(err, dualwrite.ErrPlan) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := dualwrite.LoadPlan("testdata/none.yaml"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "testdata/none.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParsePlan(f *testing.F) {
	// Small seeds, one feature each. The fuzzer minimizes every new
	// interesting input, at a cost that grows with the square of its length
	// for up to a minute (-fuzzminimizetime): seeded with the whole example
	// plan, the workers spent nearly all their time minimizing and made a
	// few executions a minute.
	for _, s := range []string{
		"version: 1\nmoves: []\n",
		"version: 1\nmoves:\n  - {name: a, table: t, key: [id], old: x, new: {column: y, type: BIGINT}}\n",
		"version: 1\nmoves:\n  - {name: a, table: t, key: [id], old: x, new: {column: y}, forward: {sql: \"{value} * 100\", dialects: {mysql: \"{value}\"}}, backward: {sql: \"{value} / 100\"}}\n",
		"version: 1\nmoves:\n  - {name: a, table: t, key: [id, k], old: x, new: {table: n, column: y, key: [tid, tk], key_type: [BIGINT, TEXT], type: {sql: TEXT, dialects: {mysql: LONGTEXT}}}, triggers: true}\n",
		"version: 1\nmoves:\n  - {name: a, table: t, key: [id], old: x, new: {column: y}, releases: {write_both: 1, read_new: 2, write_new: 3, contracted: 4}}\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 2048 {
			// Longer inputs find nothing shorter ones do not, and each new
			// one would cost the minimizer seconds (the size limit has a
			// test of its own).
			return
		}
		p, err := dualwrite.ParsePlan(strings.NewReader(src))
		if err != nil {
			if !errors.Is(err, dualwrite.ErrPlan) {
				t.Fatalf("error %v does not match ErrPlan", err)
			}
			return
		}
		// Whatever parses is valid, and its SQL never carries a statement break.
		for _, m := range p.Moves {
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			for _, d := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
				dl, _ := sqldialect.For(d)
				for _, ph := range []move.Phase{move.WriteBoth, move.Contracted} {
					steps, err := dualwrite.StepsFor(m, dl.Name(), ph)
					if err != nil {
						continue
					}
					for _, s := range steps {
						if strings.Contains(s.ID, "triggers") {
							continue // trigger bodies hold statements of their own
						}
						for _, q := range s.SQL {
							if strings.Contains(q, ";") {
								t.Fatalf("statement break in %q", q)
							}
						}
					}
				}
			}
		}
	})
}

// TestStepsSQLGolden pins the DDL `tandem moves sql` prints per engine.
func TestStepsSQLGolden(t *testing.T) {
	p, err := dualwrite.LoadPlan("testdata/plan.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range p.Moves {
		for _, d := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
			dl, _ := sqldialect.For(d)
			var b strings.Builder
			for _, ph := range move.Phases() {
				steps, err := dualwrite.StepsFor(m, dl.Name(), ph)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range steps {
					b.WriteString("-- " + s.ID + ": " + s.Description + "\n")
					for _, q := range s.SQL {
						b.WriteString(q + ";\n")
					}
				}
			}
			golden := filepath.Join("testdata", m.Name+"."+string(d)+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if b.String() != string(want) {
				t.Errorf("%s differs:\n%s", golden, b.String())
			}
		}
	}
}

// TestParsePlanSizeLimit: a plan over the limit is refused whole, naming the
// limit, where it used to be cut off and lose the moves after the cut.
func TestParsePlanSizeLimit(t *testing.T) {
	head := "version: 1\nmoves:\n  - {name: a, table: t, key: [id], old: x, new: {column: y}}\n"
	tail := "  - {name: b, table: t, key: [id], old: x, new: {column: z}}\n"
	pad := func(total int) string {
		n := total - len(head) - len(tail)
		line := "#" + strings.Repeat("p", 98) + "\n"
		var b strings.Builder
		b.WriteString(head)
		for b.Len()+len(line) <= len(head)+n {
			b.WriteString(line)
		}
		b.WriteString(strings.Repeat("#", len(head)+n-b.Len()-1) + "\n")
		b.WriteString(tail)
		return b.String()
	}
	for _, tc := range []struct {
		name string
		size int
		ok   bool
	}{
		{"at the limit", dualwrite.MaxPlanSize, true},
		{"one byte over", dualwrite.MaxPlanSize + 1, false},
		{"far over", dualwrite.MaxPlanSize + 5<<20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := pad(tc.size)
			if len(src) != tc.size {
				t.Fatalf("built %d bytes, want %d", len(src), tc.size)
			}
			p, err := dualwrite.ParsePlan(strings.NewReader(src))
			if tc.ok {
				if err != nil || len(p.Moves) != 2 {
					t.Fatalf("got %d moves, %v; want both moves", len(p.Moves), err)
				}
				return
			}
			if !errors.Is(err, dualwrite.ErrPlanTooLarge) || !errors.Is(err, dualwrite.ErrPlan) {
				t.Fatalf("err = %v, want ErrPlanTooLarge and ErrPlan", err)
			}
			if !strings.Contains(err.Error(), "16 MiB limit") {
				t.Errorf("error does not name the limit: %v", err)
			}
		})
	}
}
