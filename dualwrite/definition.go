package dualwrite

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
)

// DefinitionFormat is the version of the canonical form this build writes
// and reads; a digest is only comparable within one format.
const DefinitionFormat = 1

// Definition is a move as the ledger records it: the one truth about what
// data goes where and how, in canonical JSON with its digest. A move is
// recorded the first time it is applied (Manager construction, the first
// advance, `tandem moves apply`, NewTracker); every later declaration must
// match it or be recorded as an amendment, and every command can rebuild
// the move from it without the application's code or a plan file.
type Definition struct {
	Move    string `json:"move"`
	Version int64  `json:"version"` // 1 when first recorded, +1 per amendment
	Digest  string `json:"digest"`  // sha256 of Canonical, hex
	// Canonical is the definition as recorded (see Canonical).
	Canonical  string    `json:"definition"`
	RecordedAt time.Time `json:"recorded_at"`
	Release    int64     `json:"release"`
	// Change says, for an amendment, which fields changed and why.
	Change string `json:"change,omitempty"`
}

// canonicalMove is the recorded form: the declaration's portable fields,
// plus which transforms need a Go function (one without a SQL expression
// for every engine). A Go function cannot be recorded; that it exists can.
type canonicalMove struct {
	Format     int       `json:"format"`
	Move       move.Move `json:"move"`
	ForwardGo  bool      `json:"forward_go,omitempty"`
	BackwardGo bool      `json:"backward_go,omitempty"`
}

// needsGo reports whether t has no SQL for some engine, so only its Go
// function can run it there. A transform with a SQL expression for every
// engine is recorded by its SQL alone: the Go form must agree with it
// (verify checks that), and a plan, which cannot carry Go, matches it.
func needsGo(t move.Transform) bool {
	for _, d := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
		if !t.HasSQL(d) {
			return true
		}
	}
	return false
}

func canonicalTransform(t move.Transform) move.Transform {
	out := move.Transform{SQL: t.SQL}
	for d, e := range t.Dialects {
		if e == "" || e == t.SQL {
			continue // the default already says it
		}
		if out.Dialects == nil {
			out.Dialects = map[dialect.Name]string{}
		}
		out.Dialects[d] = e
	}
	return out
}

func canonicalType(c move.ColumnType) move.ColumnType {
	out := move.ColumnType{SQL: c.SQL}
	for d, s := range c.Dialects {
		if s == "" || s == c.SQL {
			continue
		}
		if out.Dialects == nil {
			out.Dialects = map[dialect.Name]string{}
		}
		out.Dialects[d] = s
	}
	return out
}

// Canonical returns m's canonical definition: the same bytes for every
// declaration that means the same move (a same-table target named either
// way, a dialect override equal to the default, map order), and different
// bytes for any difference that matters.
func Canonical(m move.Move) []byte {
	c := canonicalMove{Format: DefinitionFormat, Move: m, ForwardGo: needsGo(m.Forward), BackwardGo: needsGo(m.Backward)}
	c.Move.Key = slices.Clone(m.Key)
	if !m.CrossTable() {
		c.Move.New.Table, c.Move.New.Key, c.Move.New.KeyType = "", nil, nil
	}
	c.Move.New.Type = canonicalType(m.New.Type)
	c.Move.New.KeyType = nil
	if m.CrossTable() {
		for _, kt := range m.New.KeyType {
			c.Move.New.KeyType = append(c.Move.New.KeyType, canonicalType(kt))
		}
	}
	c.Move.Forward, c.Move.Backward = canonicalTransform(m.Forward), canonicalTransform(m.Backward)
	// The freeze is a set: one order. Empty is left out, so definitions
	// recorded before the field existed keep their digest.
	c.Move.Freeze = nil
	if len(m.Freeze) > 0 {
		c.Move.Freeze = slices.Clone(m.Freeze)
		slices.Sort(c.Move.Freeze)
		c.Move.Freeze = slices.Compact(c.Move.Freeze)
	}
	b, err := json.Marshal(c)
	if err != nil {
		// Only strings, bools, ints, slices and maps with string keys:
		// marshalling cannot fail.
		panic("dualwrite: canonical definition: " + err.Error())
	}
	return b
}

// Digest returns the hex sha256 of m's canonical definition.
func Digest(m move.Move) string { return digestOf(Canonical(m)) }

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// MoveFromDefinition rebuilds a move from its canonical definition. A
// transform recorded as needing Go gets a function that refuses with a
// *GoOnlyError: the CLI cannot run the application's code (Manager.Backfill
// and Verify say so before they start).
func MoveFromDefinition(canonical []byte) (move.Move, error) {
	dec := json.NewDecoder(bytes.NewReader(canonical))
	dec.DisallowUnknownFields()
	var c canonicalMove
	if err := dec.Decode(&c); err != nil {
		return move.Move{}, fmt.Errorf("recorded definition: %w", err)
	}
	if c.Format != DefinitionFormat {
		return move.Move{}, fmt.Errorf("recorded definition of move %q: format %d, this build reads %d; upgrade tandem", c.Move.Name, c.Format, DefinitionFormat)
	}
	m := c.Move
	if c.ForwardGo {
		m.Forward.Go = goOnly(m.Name, "forward")
	}
	if c.BackwardGo {
		m.Backward.Go = goOnly(m.Name, "backward")
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("recorded definition: %w", err)
	}
	return m, nil
}

// NeedsGo reports which of the recorded transforms need the application's
// Go function: those without a SQL expression for every engine.
func (d Definition) NeedsGo() (forward, backward bool) {
	var c canonicalMove
	if err := json.Unmarshal([]byte(d.Canonical), &c); err != nil {
		return false, false
	}
	return c.ForwardGo, c.BackwardGo
}

func goOnly(name, dir string) func(any) (any, error) {
	return func(any) (any, error) { return nil, &GoOnlyError{Move: name, Direction: dir} }
}

// FieldChange is one field where a declaration differs from the recorded
// definition.
type FieldChange struct {
	Field    string `json:"field"` // e.g. "releases.read_new", "forward.sql"
	Recorded string `json:"recorded"`
	Declared string `json:"declared"`
	// Refused is why the change cannot be recorded at the move's phase;
	// empty when it can be, as an amendment.
	Refused string `json:"refused,omitempty"`
}

func (f FieldChange) String() string {
	s := fmt.Sprintf("%s: recorded %s, declared %s", f.Field, orNone(f.Recorded), orNone(f.Declared))
	if f.Refused != "" {
		s += " (cannot change: " + f.Refused + ")"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// diffDefinitions lists the fields where two canonical definitions differ,
// by dotted path, in path order.
func diffDefinitions(recorded, declared []byte) ([]FieldChange, error) {
	a, err := flatten(recorded)
	if err != nil {
		return nil, err
	}
	b, err := flatten(declared)
	if err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []FieldChange
	for _, k := range keys {
		ra, oka := a[k]
		rb, okb := b[k]
		if oka && okb && ra == rb {
			continue
		}
		// A field left out is its zero value (the form omits zeros).
		if !oka {
			ra = zeroLike(rb)
		}
		if !okb {
			rb = zeroLike(ra)
		}
		if ra != rb {
			out = append(out, FieldChange{Field: strings.TrimPrefix(k, "move."), Recorded: ra, Declared: rb})
		}
	}
	return out, nil
}

// zeroLike is the zero value of the JSON leaf v's type, as flatten writes it.
func zeroLike(v string) string {
	switch {
	case v == "true" || v == "false":
		return "false"
	case strings.HasPrefix(v, "["):
		return ""
	case v != "" && strings.Trim(v, "0123456789.-") == "":
		return "0"
	}
	return ""
}

// flatten turns a JSON object into dotted paths and leaf values; arrays
// are leaves, written as JSON.
func flatten(doc []byte) (map[string]string, error) {
	var v map[string]any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("recorded definition: %w", err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case string:
			out[prefix] = x
		default:
			b, _ := json.Marshal(x)
			out[prefix] = string(b)
		}
	}
	walk("", v)
	delete(out, "format")
	return out, nil
}
