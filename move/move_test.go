package move

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

func sameTable() Move {
	return Move{
		Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:      Target{Column: "price_cents", Type: ColumnType{SQL: "BIGINT"}},
		Forward:  Transform{SQL: "CAST({value} * 100 AS INTEGER)", Dialects: map[dialect.Name]string{dialect.MySQL: "CAST({value} * 100 AS SIGNED)"}},
		Backward: Transform{SQL: "{value} / 100.0"},
		Releases: Releases{WriteBoth: 2, ReadNew: 3, WriteNew: 4, Contracted: 5},
	}
}

func crossTable() Move {
	return Move{
		Name: "props", Table: "resource", Key: []string{"stack_id", "name"}, Old: "properties",
		New: Target{Table: "resource_properties", Column: "data", Key: []string{"stack_id", "resource_name"},
			Type: ColumnType{SQL: "TEXT"}, KeyType: []ColumnType{{SQL: "BIGINT"}, {SQL: "VARCHAR(100)"}}},
	}
}

func TestPhaseRoundTrip(t *testing.T) {
	for _, p := range Phases() {
		got, err := ParsePhase(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePhase(%q) = %v, %v", p, got, err)
		}
		b, _ := p.MarshalText()
		var q Phase
		if err := q.UnmarshalText(b); err != nil || q != p {
			t.Errorf("text round trip of %v: %v, %v", p, q, err)
		}
	}
	for _, in := range []string{"WRITE_BOTH", " read-new "} {
		if _, err := ParsePhase(in); err != nil {
			t.Errorf("ParsePhase(%q): %v", in, err)
		}
	}
	for _, in := range []string{"", "writeboth", "legacy;", "6"} {
		if _, err := ParsePhase(in); !errors.Is(err, ErrBadPhase) {
			t.Errorf("ParsePhase(%q) = %v, want ErrBadPhase", in, err)
		}
	}
	if _, ok := Contracted.Next(); ok {
		t.Error("Contracted has a next phase")
	}
	if _, ok := Legacy.Prev(); ok {
		t.Error("Legacy has a previous phase")
	}
}

func TestPhaseBehaviour(t *testing.T) {
	tests := []struct {
		p                                        Phase
		writesOld, writesNew, readsOld, readsNew bool
	}{
		{Legacy, true, false, true, false},
		{WriteBoth, true, true, true, false},
		{ReadNew, true, true, false, true},
		{WriteNew, false, true, false, true},
		{Contracted, false, true, false, true},
	}
	for _, tt := range tests {
		if tt.p.WritesOld() != tt.writesOld || tt.p.WritesNew() != tt.writesNew || tt.p.ReadsOld() != tt.readsOld || tt.p.ReadsNew() != tt.readsNew {
			t.Errorf("%v: behaviour table wrong", tt.p)
		}
	}
}

func TestReleasesHighest(t *testing.T) {
	r := Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 43, Contracted: 45}
	for rel, want := range map[int64]Phase{41: Legacy, 42: WriteBoth, 43: WriteNew, 44: WriteNew, 45: Contracted, 99: Contracted} {
		if got := r.Highest(rel); got != want {
			t.Errorf("Highest(%d) = %v, want %v", rel, got, want)
		}
	}
	if got := (Releases{}).Highest(1); got != Contracted {
		t.Errorf("no releases declared: Highest = %v, want contracted", got)
	}
}

func TestValidate(t *testing.T) {
	ok := []Move{sameTable(), crossTable(), {Name: "copy", Table: "t", Key: []string{"id"}, Old: "a", New: Target{Column: "b"}}}
	for _, m := range ok {
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", m.Name, err)
		}
	}
	tests := []struct {
		name  string
		edit  func(*Move)
		field string
	}{
		{"empty name", func(m *Move) { m.Name = "" }, "Name"},
		{"quote in table", func(m *Move) { m.Table = `products"` }, "Table"},
		{"semicolon in old", func(m *Move) { m.Old = "price;drop" }, "Old"},
		{"backtick in new", func(m *Move) { m.New.Column = "a`b" }, "New.Column"},
		{"no key", func(m *Move) { m.Key = nil }, "Key"},
		{"key twice", func(m *Move) { m.Key = []string{"id", "id"} }, "Key"},
		{"old is key", func(m *Move) { m.Old = "id" }, "Old"},
		{"old equals new", func(m *Move) { m.New.Column = "price" }, "New.Column"},
		{"new is key", func(m *Move) { m.New.Column = "id" }, "New.Column"},
		{"same table with other key", func(m *Move) { m.New.Key = []string{"x"} }, "New.Key"},
		{"no placeholder", func(m *Move) { m.Forward.SQL = "price * 100" }, "Forward.SQL"},
		{"statement in expression", func(m *Move) { m.Forward.SQL = "{value}; DROP TABLE products" }, "Forward.SQL"},
		{"comment in expression", func(m *Move) { m.Backward.SQL = "{value} -- x" }, "Backward.SQL"},
		{"unbalanced", func(m *Move) { m.Backward.SQL = "({value}" }, "Backward.SQL"},
		{"open quote", func(m *Move) { m.Backward.SQL = "{value} || 'x" }, "Backward.SQL"},
		{"unknown engine", func(m *Move) { m.Forward.Dialects = map[dialect.Name]string{"oracle": "{value}"} }, "Forward.Dialects"},
		{"bad override", func(m *Move) { m.Forward.Dialects[dialect.MySQL] = "{value};" }, "Forward.Dialects[mysql]"},
		{"only one engine", func(m *Move) { m.Forward = Transform{Dialects: map[dialect.Name]string{dialect.MySQL: "{value}"}} }, "Forward"},
		{"releases go back", func(m *Move) { m.Releases.WriteNew = 1 }, "Releases.write-new"},
		{"negative release", func(m *Move) { m.Releases.ReadNew = -3 }, "Releases.read-new"},
		{"bad type", func(m *Move) { m.New.Type.SQL = "BIGINT; DROP" }, "New.Type"},
		{"triggers need SQL", func(m *Move) {
			m.Triggers = true
			m.Forward = Transform{Go: func(v any) (any, error) { return v, nil }}
		}, "Forward"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := sameTable()
			m.Forward.Dialects = map[dialect.Name]string{dialect.MySQL: "CAST({value} * 100 AS SIGNED)"}
			tt.edit(&m)
			err := m.Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate() = %v, want a *ValidationError", err)
			}
			if !strings.HasPrefix(ve.Field, tt.field) {
				t.Errorf("field = %q, want %q (%v)", ve.Field, tt.field, err)
			}
		})
	}
	crossTests := []struct {
		name string
		edit func(*Move)
	}{
		{"key count", func(m *Move) { m.New.Key = m.New.Key[:1] }},
		{"bad new key", func(m *Move) { m.New.Key[1] = "x y" }},
		{"bad new table", func(m *Move) { m.New.Table = "a.b" }},
		{"new column is key", func(m *Move) { m.New.Column = "stack_id" }},
		{"key type count", func(m *Move) { m.New.KeyType = m.New.KeyType[:1] }},
	}
	for _, tt := range crossTests {
		m := crossTable()
		m.New.Key = append([]string(nil), m.New.Key...)
		tt.edit(&m)
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate() = %v, want ErrInvalid", tt.name, err)
		}
	}
	a, b := sameTable(), sameTable()
	if err := ValidateAll([]Move{a, b}); !errors.Is(err, ErrInvalid) {
		t.Errorf("duplicate names: %v", err)
	}
}

func TestRender(t *testing.T) {
	m := sameTable()
	tests := []struct {
		tr   Transform
		d    dialect.Name
		want string
		err  error
	}{
		{m.Forward, dialect.SQLite, `(CAST(NEW."price" * 100 AS INTEGER))`, nil},
		{m.Forward, dialect.MySQL, `(CAST(NEW."price" * 100 AS SIGNED))`, nil},
		{Transform{}, dialect.Postgres, `NEW."price"`, nil},
		{Transform{SQL: "COALESCE({value}, {value})"}, dialect.Postgres, `(COALESCE(NEW."price", NEW."price"))`, nil},
		{Transform{Go: func(v any) (any, error) { return v, nil }}, dialect.Postgres, "", ErrNoSQL},
	}
	for _, tt := range tests {
		got, err := tt.tr.Render(tt.d, `NEW."price"`)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("Render(%s) = %q, %v; want %q, %v", tt.d, got, err, tt.want, tt.err)
		}
	}
	double := Transform{Go: func(v any) (any, error) { return v.(string) + v.(string), nil }}
	if v, err := double.Apply([]byte("ab")); err != nil || v != "abab" {
		t.Errorf("Apply on bytes = %v, %v", v, err)
	}
	if _, err := (Transform{SQL: "{value}"}).Apply(1); !errors.Is(err, ErrNoGo) {
		t.Errorf("Apply without Go: %v", err)
	}
}

func TestCheckSchema(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		d := sqldialect.Of(db)
		exec := func(q string) {
			t.Helper()
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(10,2), label VARCHAR(50))`)
		exec(`CREATE TABLE resource (stack_id BIGINT NOT NULL, name VARCHAR(100) NOT NULL, properties TEXT, PRIMARY KEY (stack_id, name))`)
		m := sameTable()
		if err := m.CheckSchema(ctx, db, d.Name(), Legacy); err != nil {
			t.Fatalf("legacy without the new column (it has a type): %v", err)
		}
		wantKind := func(name string, err, kind error) {
			t.Helper()
			var se *SchemaError
			if !errors.As(err, &se) || !errors.Is(err, ErrSchema) || !errors.Is(err, kind) {
				t.Errorf("%s: got %v, want a *SchemaError of kind %v", name, err, kind)
			}
		}
		wantKind("write-both without new column", m.CheckSchema(ctx, db, d.Name(), WriteBoth), ErrNoColumn)
		noType := m
		noType.New.Type = ColumnType{}
		wantKind("no type to add with", noType.CheckSchema(ctx, db, d.Name(), Legacy), ErrNoColumn)
		missing := m
		missing.Table = "nope"
		wantKind("missing table", missing.CheckSchema(ctx, db, d.Name(), Legacy), ErrNoTable)
		badKey := m
		badKey.Key = []string{"sku"}
		wantKind("missing key", badKey.CheckSchema(ctx, db, d.Name(), Legacy), ErrNoColumn)
		badOld := m
		badOld.Old = "cost"
		wantKind("missing old", badOld.CheckSchema(ctx, db, d.Name(), Legacy), ErrNoColumn)
		if err := badOld.CheckSchema(ctx, db, d.Name(), Contracted); err == nil || !errors.Is(err, ErrNoColumn) {
			// After contract old is gone, but new must exist.
			t.Errorf("contracted without new column: %v", err)
		}
		exec(`ALTER TABLE products ADD COLUMN price_cents BIGINT`)
		if err := m.CheckSchema(ctx, db, d.Name(), ReadNew); err != nil {
			t.Errorf("read-new with both columns: %v", err)
		}
		identity := Move{Name: "label_num", Table: "products", Key: []string{"id"}, Old: "label", New: Target{Column: "price_cents"}}
		wantKind("text into integer as is", identity.CheckSchema(ctx, db, d.Name(), WriteBoth), ErrIncompatibleType)
		widen := Move{Name: "widen", Table: "products", Key: []string{"id"}, Old: "price_cents", New: Target{Column: "price"}}
		if err := widen.CheckSchema(ctx, db, d.Name(), WriteBoth); err != nil {
			t.Errorf("integer into decimal: %v", err)
		}
		if err := identity.CheckSchema(ctx, db, d.Name(), WriteBoth); err == nil {
			t.Error("identity check passed")
		}
		bad := m
		bad.Old = `price"`
		if err := bad.CheckSchema(ctx, db, d.Name(), Legacy); !errors.Is(err, ErrInvalid) {
			t.Errorf("invalid declaration: %v", err)
		}

		x := crossTable()
		if err := x.CheckSchema(ctx, db, d.Name(), Legacy); err != nil {
			t.Errorf("cross-table, new table creatable: %v", err)
		}
		wantKind("cross-table write-both without table", x.CheckSchema(ctx, db, d.Name(), WriteBoth), ErrNoTable)
		exec(`CREATE TABLE resource_properties (stack_id BIGINT NOT NULL, resource_name VARCHAR(100) NOT NULL, data TEXT, PRIMARY KEY (stack_id, resource_name))`)
		if err := x.CheckSchema(ctx, db, d.Name(), WriteNew); err != nil {
			t.Errorf("cross-table with table: %v", err)
		}
		x2 := crossTable()
		x2.New.Key = []string{"stack_id", "nope"}
		wantKind("cross-table missing key", x2.CheckSchema(ctx, db, d.Name(), WriteBoth), ErrNoColumn)
		x3 := crossTable()
		x3.New.Key = []string{"resource_name", "stack_id"} // swapped: text cannot hold the integer key
		wantKind("cross-table key type", x3.CheckSchema(ctx, db, d.Name(), WriteBoth), ErrIncompatibleType)
	})
}

func FuzzParsePhase(f *testing.F) {
	for _, s := range []string{"legacy", "write-both", "READ_NEW", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePhase(s)
		if err != nil {
			if !errors.Is(err, ErrBadPhase) {
				t.Fatalf("error %v does not wrap ErrBadPhase", err)
			}
			return
		}
		if q, _ := ParsePhase(p.String()); q != p {
			t.Fatalf("round trip %q -> %v -> %v", s, p, q)
		}
	})
}

func FuzzTransformSQL(f *testing.F) {
	for _, s := range []string{"{value}", "CAST({value} AS INTEGER)", "{value};", "'{value}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		m := sameTable()
		m.Forward = Transform{SQL: expr}
		if err := m.Validate(); err != nil {
			return
		}
		out, err := m.Forward.Render(dialect.Postgres, `t."price"`)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(out, ";") || strings.Contains(out, "--") || strings.Contains(out, "/*") {
			t.Fatalf("accepted %q renders %q", expr, out)
		}
		if strings.Contains(out, Placeholder) {
			t.Fatalf("placeholder left in %q", out)
		}
	})
}
