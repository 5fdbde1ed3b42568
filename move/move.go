package move

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// Move declares one data move: a column to another column of the same table,
// or to a column of another table keyed back to the first.
type Move struct {
	// Name identifies the move in the ledger and on the command line.
	Name string `yaml:"name" json:"name"`
	// Table holds the old column; Key is its primary key, one column or
	// several (composite), in order.
	Table string   `yaml:"table" json:"table"`
	Key   []string `yaml:"key" json:"key"`
	// Old is the column being moved away from.
	Old string `yaml:"old" json:"old"`
	// New is where the data goes. Its Table is empty for a move within
	// Table.
	New Target `yaml:"new" json:"new"`
	// Forward derives new from old; Backward derives old from new.
	Forward  Transform `yaml:"forward,omitempty" json:"forward,omitempty"`
	Backward Transform `yaml:"backward,omitempty" json:"backward,omitempty"`
	// Releases says which release of the application first ships the code
	// for each phase. Zero means "any release".
	Releases Releases `yaml:"releases,omitempty" json:"releases,omitempty"`
	// Triggers makes the database keep old and new in sync (package
	// triggers), so instances need not write both themselves and the move
	// needs fewer releases.
	Triggers bool `yaml:"triggers,omitempty" json:"triggers,omitempty"`
	// Freeze lists the phases the move enters under a write freeze on it
	// (tandem freeze --move NAME): writes to the moved value are refused
	// from before the steps into the phase until after them, while reads go
	// on. Declare it for a change whose data cannot be kept right both ways
	// while writers run (a transform that is not a function of the row, a
	// change no trigger or dual write can mirror); read-new freezes the
	// backfill and verify before it too. The upgrade path planner (package
	// upgradepath) puts the freeze and thaw around those steps; nothing
	// else changes. Empty for a move that needs none.
	Freeze []Phase `yaml:"freeze,omitempty" json:"freeze,omitempty"`
	// Description is free text shown in status.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Target is the destination of a move.
type Target struct {
	// Table is the destination table; empty means the move's own table.
	Table string `yaml:"table,omitempty" json:"table,omitempty"`
	// Column is the destination column.
	Column string `yaml:"column" json:"column"`
	// Key, for another table, lists its columns that hold the source
	// table's key, in the same order as Move.Key. They form its primary
	// key, so each source row has at most one destination row.
	Key []string `yaml:"key,omitempty" json:"key,omitempty"`
	// Type is the column's SQL type, used when tandem adds the column (the
	// expand step). Key types are used when tandem creates Table.
	Type    ColumnType   `yaml:"type,omitempty" json:"type,omitempty"`
	KeyType []ColumnType `yaml:"key_type,omitempty" json:"key_type,omitempty"`
}

// ColumnType is a SQL type: one for every engine, with optional overrides.
type ColumnType struct {
	SQL      string                  `yaml:"sql,omitempty" json:"sql,omitempty"`
	Dialects map[dialect.Name]string `yaml:"dialects,omitempty" json:"dialects,omitempty"`
}

// For returns the type for engine d, or "" when none is declared.
func (c ColumnType) For(d dialect.Name) string {
	if s, ok := c.Dialects[d]; ok && s != "" {
		return s
	}
	return c.SQL
}

// UnmarshalYAML lets a plan write `type: BIGINT` as well as the full form.
func (c *ColumnType) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err == nil {
		c.SQL = s
		return nil
	}
	type plain ColumnType
	return unmarshal((*plain)(c))
}

// Releases names the release that first ships each phase's code.
type Releases struct {
	WriteBoth  int64 `yaml:"write_both,omitempty" json:"write_both,omitempty"`
	ReadNew    int64 `yaml:"read_new,omitempty" json:"read_new,omitempty"`
	WriteNew   int64 `yaml:"write_new,omitempty" json:"write_new,omitempty"`
	Contracted int64 `yaml:"contracted,omitempty" json:"contracted,omitempty"`
}

// For returns the release shipping phase p (0 for Legacy or when unset).
func (r Releases) For(p Phase) int64 {
	switch p {
	case WriteBoth:
		return r.WriteBoth
	case ReadNew:
		return r.ReadNew
	case WriteNew:
		return r.WriteNew
	case Contracted:
		return r.Contracted
	}
	return 0
}

// Highest returns the highest phase whose code a build of release r
// carries. A build acts on min(Highest, the ledger's phase).
func (r Releases) Highest(release int64) Phase {
	best := Legacy
	for _, p := range Phases()[1:] {
		if r.For(p) <= release {
			best = p
		} else {
			break
		}
	}
	return best
}

// FreezesInto reports whether the move enters p under a write freeze.
func (m Move) FreezesInto(p Phase) bool { return slices.Contains(m.Freeze, p) }

// CrossTable reports whether new lives in a table of its own.
func (m Move) CrossTable() bool { return m.New.Table != "" && m.New.Table != m.Table }

// NewTable returns the table holding the new column.
func (m Move) NewTable() string {
	if m.CrossTable() {
		return m.New.Table
	}
	return m.Table
}

// NewKey returns the new table's columns matching Key, in order.
func (m Move) NewKey() []string {
	if m.CrossTable() {
		return m.New.Key
	}
	return m.Key
}

// Validate checks the declaration on its own, without a database: every
// identifier is a plain name, old differs from new, keys line up, the
// transform expressions are single expressions and the releases do not go
// back. It returns a *ValidationError (errors.Is ErrInvalid).
func (m Move) Validate() error {
	bad := func(field, value, reason string, err error) error {
		return &ValidationError{Move: m.Name, Field: field, Value: value, Reason: reason, Err: err}
	}
	ident := func(field, v string) error {
		if err := dialect.CheckIdentifier(v); err != nil {
			return bad(field, v, "not a safe SQL identifier", err)
		}
		return nil
	}
	if err := ident("Name", m.Name); err != nil {
		return err
	}
	if err := ident("Table", m.Table); err != nil {
		return err
	}
	if len(m.Key) == 0 {
		return bad("Key", "", "a move needs the table's key columns (one, or several for a composite key)", nil)
	}
	for i, k := range m.Key {
		if err := ident(fmt.Sprintf("Key[%d]", i), k); err != nil {
			return err
		}
		if slices.Contains(m.Key[:i], k) {
			return bad("Key", k, "listed twice", nil)
		}
	}
	if err := ident("Old", m.Old); err != nil {
		return err
	}
	if slices.Contains(m.Key, m.Old) {
		return bad("Old", m.Old, "a key column cannot be moved", nil)
	}
	if err := ident("New.Column", m.New.Column); err != nil {
		return err
	}
	if m.New.Table != "" {
		if err := ident("New.Table", m.New.Table); err != nil {
			return err
		}
	}
	if m.CrossTable() {
		if len(m.New.Key) != len(m.Key) {
			return bad("New.Key", strings.Join(m.New.Key, ","), fmt.Sprintf("the new table needs %d key column(s) matching %s in order", len(m.Key), strings.Join(m.Key, ", ")), nil)
		}
		for i, k := range m.New.Key {
			if err := ident(fmt.Sprintf("New.Key[%d]", i), k); err != nil {
				return err
			}
			if slices.Contains(m.New.Key[:i], k) {
				return bad("New.Key", k, "listed twice", nil)
			}
		}
		if slices.Contains(m.New.Key, m.New.Column) {
			return bad("New.Column", m.New.Column, "the new column cannot be one of the new table's key columns", nil)
		}
		if len(m.New.KeyType) != 0 && len(m.New.KeyType) != len(m.Key) {
			return bad("New.KeyType", fmt.Sprint(len(m.New.KeyType)), fmt.Sprintf("give one type per key column (%d)", len(m.Key)), nil)
		}
	} else {
		if len(m.New.Key) != 0 && !slices.Equal(m.New.Key, m.Key) {
			return bad("New.Key", strings.Join(m.New.Key, ","), "a move within one table uses the table's own key; leave New.Key empty", nil)
		}
		if m.New.Column == m.Old {
			return bad("New.Column", m.New.Column, "old and new are the same column", nil)
		}
		if slices.Contains(m.Key, m.New.Column) {
			return bad("New.Column", m.New.Column, "the new column cannot be a key column", nil)
		}
	}
	if err := m.Forward.validate(m.Name, "Forward"); err != nil {
		return err
	}
	if err := m.Backward.validate(m.Name, "Backward"); err != nil {
		return err
	}
	for _, tr := range []struct {
		name string
		t    Transform
	}{{"Forward", m.Forward}, {"Backward", m.Backward}} {
		if !tr.t.HasGo() && !(tr.t.HasSQL(dialect.SQLite) && tr.t.HasSQL(dialect.Postgres) && tr.t.HasSQL(dialect.MySQL)) {
			return bad(tr.name, "", "give a Go function or a default SQL expression: without either, some engine has no way to run it", nil)
		}
		if m.Triggers && tr.t.Go != nil && tr.t.SQL == "" && len(tr.t.Dialects) == 0 {
			return bad(tr.name, "", "a move with triggers needs the transform as a SQL expression (triggers run inside the database)", nil)
		}
	}
	for _, ct := range append([]ColumnType{m.New.Type}, m.New.KeyType...) {
		if err := checkType(m.Name, ct); err != nil {
			return err
		}
	}
	for i, p := range m.Freeze {
		switch {
		case !p.Valid() || p == Legacy:
			return bad("Freeze", p.String(), "a move enters write-both, read-new, write-new or contracted: legacy is where it starts", nil)
		case slices.Contains(m.Freeze[:i], p):
			return bad("Freeze", p.String(), "listed twice", nil)
		}
	}
	prev, prevPhase := int64(0), Legacy
	for _, p := range Phases()[1:] {
		r := m.Releases.For(p)
		if r < 0 {
			return bad("Releases."+p.String(), fmt.Sprint(r), "a release is a positive integer", nil)
		}
		if r != 0 && r < prev {
			return bad("Releases."+p.String(), fmt.Sprint(r), fmt.Sprintf("earlier than %s's release %d: phases ship in order", prevPhase, prev), nil)
		}
		if r != 0 {
			prev, prevPhase = r, p
		}
	}
	return nil
}

var typeRE = func(s string) bool {
	// A type name with an optional size or enum list: letters, digits,
	// spaces, parentheses, commas. Nothing that could end a statement.
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(" (),_", r):
		default:
			return false
		}
	}
	return true
}

func checkType(name string, ct ColumnType) error {
	vals := []string{ct.SQL}
	for d, v := range ct.Dialects {
		if _, err := sqldialect.For(d); err != nil {
			return &ValidationError{Move: name, Field: "New.Type.Dialects", Value: string(d), Reason: "unknown engine: want sqlite, postgres or mysql"}
		}
		vals = append(vals, v)
	}
	for _, v := range vals {
		if !typeRE(v) {
			return &ValidationError{Move: name, Field: "New.Type", Value: v, Reason: "a column type may contain letters, digits, spaces, underscores, commas and parentheses only"}
		}
	}
	return nil
}

// ValidateAll validates each move and that names are unique.
func ValidateAll(moves []Move) error {
	seen := map[string]bool{}
	var errs []error
	for _, m := range moves {
		if err := m.Validate(); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[m.Name] {
			errs = append(errs, &ValidationError{Move: m.Name, Field: "Name", Value: m.Name, Reason: "two moves have this name"})
		}
		seen[m.Name] = true
	}
	return errors.Join(errs...)
}
