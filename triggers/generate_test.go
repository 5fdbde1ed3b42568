package triggers_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

var engines = []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL}

// TestInjectionRefused: identifiers and expressions built to inject SQL are
// refused before any SQL is generated, on every engine.
func TestInjectionRefused(t *testing.T) {
	base := testMoves["same_xform"]
	cases := []struct {
		name   string
		edit   func(*move.Move)
		wantIs error
	}{
		{"table closing the double quote", func(m *move.Move) { m.Table = `items"; DROP TABLE items; --` }, dialect.ErrBadIdentifier},
		{"column closing the backtick", func(m *move.Move) { m.Old = "price` = 1; DROP TABLE items; --" }, dialect.ErrBadIdentifier},
		{"new column with a quote", func(m *move.Move) { m.New.Column = `x'y` }, dialect.ErrBadIdentifier},
		{"key with a space", func(m *move.Move) { m.Key = []string{"id OR 1=1"} }, dialect.ErrBadIdentifier},
		{"move name with a dollar tag", func(m *move.Move) { m.Name = "a$tandem$b" }, dialect.ErrBadIdentifier},
		{"new table with a NUL", func(m *move.Move) {
			m.New = move.Target{Table: "t\x00", Key: []string{"id"}, Column: "c"}
		}, dialect.ErrBadIdentifier},
		{"forward ending the statement", func(m *move.Move) {
			m.Forward = move.Transform{SQL: "{value}; DROP TABLE items"}
		}, nil},
		{"backward hiding the rest in a comment", func(m *move.Move) {
			m.Backward = move.Transform{SQL: "{value} -- "}
		}, nil},
		{"override closing the PostgreSQL body", func(m *move.Move) {
			m.Forward = move.Transform{SQL: "{value}", Dialects: map[dialect.Name]string{dialect.Postgres: "{value} $tandem$"}}
		}, nil},
	}
	for _, c := range cases {
		for _, d := range engines {
			t.Run(c.name+"/"+string(d), func(t *testing.T) {
				m := base
				c.edit(&m)
				set, err := triggers.ForMove(d, m)
				if err == nil {
					if d == dialect.Postgres || !strings.Contains(c.name, "PostgreSQL") {
						t.Fatalf("accepted:\n%s", set.SQL())
					}
					return
				}
				if !errors.Is(err, triggers.ErrInvalid) {
					t.Errorf("error %v does not match ErrInvalid", err)
				}
				if c.wantIs != nil && !errors.Is(err, c.wantIs) {
					t.Errorf("error %v does not match %v", err, c.wantIs)
				}
			})
		}
	}
}

// TestGeneratorRefusesUnsafeExpressions checks the generator's own guard,
// for callers that build the spec without package move's validation.
func TestGeneratorRefusesUnsafeExpressions(t *testing.T) {
	for _, expr := range []string{"%s; DROP TABLE t", "%s -- x", "%s /* x", "$tandem$ %s", "42"} {
		for _, d := range engines {
			dl, _ := sqldialect.For(d)
			_, err := sqldialect.TriggerObjects(dl, sqldialect.TriggerSpec{
				Move: "m", Table: "t", Key: []string{"id"}, Old: "a", New: "b",
				Forward: func(src string) (string, error) { return strings.Replace(expr, "%s", src, 1), nil },
			})
			if !errors.Is(err, sqldialect.ErrTriggerSpec) {
				t.Errorf("%s on %s: got %v, want ErrTriggerSpec", expr, d, err)
			}
		}
	}
}

func TestNamePrefix(t *testing.T) {
	cases := []struct {
		move, want string
	}{
		{"price", "tandem_price_"},
		{strings.Repeat("a", 51), "tandem_" + strings.Repeat("a", 51) + "_"},
	}
	for _, c := range cases {
		if got := sqldialect.TriggerNamePrefix(c.move); got != c.want {
			t.Errorf("TriggerNamePrefix(%q) = %q, want %q", c.move, got, c.want)
		}
	}
	long := sqldialect.TriggerNamePrefix(strings.Repeat("a", 52))
	if len(long)+4 > 63 || !strings.HasPrefix(long, "tandem_aaaa") {
		t.Errorf("long prefix %q (%d)", long, len(long))
	}
	if sqldialect.IsTriggerObjectOf("a", "tandem_a_b_1") {
		t.Error(`move "a" claims move "a_b"'s trigger`)
	}
	if !sqldialect.IsTriggerObjectOf("a_b", "tandem_a_b_1") || !sqldialect.IsTriggerObjectOf("a", "tandem_a_f2") {
		t.Error("a move does not recognise its own objects")
	}
}

// TestNeverDelimiter: every object is one statement for database/sql.
func TestNeverDelimiter(t *testing.T) {
	for name, m := range testMoves {
		for _, d := range engines {
			set, err := triggers.ForMove(d, m)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.ToUpper(set.SQL()), "DELIMITER") {
				t.Errorf("%s/%s emits DELIMITER", name, d)
			}
		}
	}
}

// FuzzForMove: whatever names and expression a declaration carries, the
// generator either refuses it or every name appears only quoted.
func FuzzForMove(f *testing.F) {
	f.Add("items", "price_cents", "price_mills", "{value} * 10")
	f.Add(`it"ems`, "a`b", "c'd", "{value}; DROP TABLE x")
	f.Add("order", "from", "to", "CAST({value} AS TEXT)")
	f.Fuzz(func(t *testing.T, table, old, newCol, expr string) {
		m := move.Move{Name: "fz", Table: table, Key: []string{"id"}, Old: old,
			New: move.Target{Column: newCol}, Forward: move.Transform{SQL: expr}, Backward: move.Transform{SQL: expr}}
		for _, d := range engines {
			set, err := triggers.ForMove(d, m)
			if err != nil {
				if !errors.Is(err, triggers.ErrInvalid) {
					t.Fatalf("error not matching ErrInvalid: %v", err)
				}
				continue
			}
			for _, id := range []string{table, old, newCol} {
				if dialect.CheckIdentifier(id) != nil {
					t.Fatalf("accepted identifier %q", id)
				}
			}
			for _, o := range set.Objects {
				if o.Kind == triggers.KindTrigger && !strings.Contains(o.Create, " ON "+quote(t, d, table)) {
					t.Fatalf("table not quoted in %s", o.Create)
				}
			}
			for _, bad := range []string{";", "--", "/*", "$tandem$"} {
				if strings.Contains(expr, bad) {
					t.Fatalf("accepted expression %q", expr)
				}
			}
		}
	})
}
