package sqldialect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// TriggerSpec is one data move as the trigger generator sees it: the old
// column in Table, the new column in NewTable (Table itself for a move within
// one table), and the two transforms already chosen for the engine.
type TriggerSpec struct {
	// Move names the move; every object's name derives from it.
	Move string
	// Table holds Old; Key is its primary key, in order.
	Table string
	Key   []string
	Old   string
	// NewTable holds New; empty or equal to Table for a move within one
	// table. NewKey lists NewTable's columns holding Table's key, in the
	// order of Key (only for another table; each source row has at most one
	// row there).
	NewTable string
	NewKey   []string
	New      string
	// Forward renders old->new applied to src, an already quoted column
	// reference; Backward renders new->old. Nil is the identity.
	Forward  func(src string) (string, error)
	Backward func(src string) (string, error)
}

// CrossTable reports whether New lives in another table.
func (s TriggerSpec) CrossTable() bool { return s.NewTable != "" && s.NewTable != s.Table }

// TriggerKind says what sort of database object a TriggerObject is.
type TriggerKind string

// The kinds of objects tandem generates.
const (
	TriggerKindTrigger  TriggerKind = "trigger"
	TriggerKindFunction TriggerKind = "function" // PostgreSQL only
)

// TriggerObject is one generated database object.
type TriggerObject struct {
	Name  string
	Kind  TriggerKind
	Table string // the table a trigger fires on; empty for a function
	// Create is one statement, without DELIMITER, to send through
	// database/sql as is.
	Create string
	// Drop removes the object and succeeds when it is absent.
	Drop string
	// Canonical is what ReadTriggerObject returns for the object when it is
	// installed exactly as generated.
	Canonical string
}

// ErrTriggerSpec means a trigger specification cannot be generated.
var ErrTriggerSpec = errors.New("bad trigger specification")

// TriggerSpecError says which part of a TriggerSpec is wrong.
type TriggerSpecError struct {
	Move   string
	Field  string
	Reason string
	Err    error
}

func (e *TriggerSpecError) Error() string {
	msg := fmt.Sprintf("triggers for move %q: %s: %s", e.Move, e.Field, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *TriggerSpecError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrTriggerSpec, e.Err}
	}
	return []error{ErrTriggerSpec}
}

// maxSuffix bounds the per-object suffix ("1".."9", "f1", "f2"), so that the
// prefix of a move's names does not depend on which object is named.
const maxSuffix = 4

// TriggerNamePrefix returns the prefix every object of move is named with:
// "tandem_<move>_", or, when that would push a name past 63 characters, a cut
// of the move's name followed by a hash of the whole name.
func TriggerNamePrefix(move string) string {
	p := "tandem_" + move + "_"
	if len(p)+maxSuffix <= 63 {
		return p
	}
	sum := sha256.Sum256([]byte(move))
	keep := 63 - len("tandem_") - 1 - 8 - 1 - maxSuffix
	return "tandem_" + move[:keep] + "_" + hex.EncodeToString(sum[:4]) + "_"
}

var suffixRE = regexp.MustCompile(`^[a-z0-9]{1,4}$`)

// IsTriggerObjectOf reports whether name is one of move's objects, whatever
// generation of tandem made it. Suffixes never contain '_', so move "a" does
// not claim the objects of move "a_b".
func IsTriggerObjectOf(move, name string) bool {
	p := TriggerNamePrefix(move)
	return strings.HasPrefix(name, p) && suffixRE.MatchString(name[len(p):])
}

// forbiddenInExpr lists what could end a statement or a PostgreSQL body, or
// hide the rest of it, if it appeared in a rendered transform.
var forbiddenInExpr = []string{";", "--", "/*", "*/", "$tandem$", "\x00"}

// TriggerObjects generates the objects that keep Old and New in sync on
// engine d. The rule is the same on every engine: the column the writer
// changed wins. On insert the missing side (NULL) is filled; on update, if
// only old changed new is derived, if only new changed old is derived, and a
// pair already consistent (new = forward(old) or old = backward(new)) is
// never rewritten, which is what stops a trigger's own write from firing
// the other direction.
func TriggerObjects(d Dialect, s TriggerSpec) ([]TriggerObject, error) {
	g, err := newTrigGen(d, s)
	if err != nil {
		return nil, err
	}
	return d.triggerObjects(g), nil
}

// trigGen holds a validated spec with every identifier already quoted.
type trigGen struct {
	s        TriggerSpec
	prefix   string
	t, nt    string // quoted tables
	o, n     string // quoted columns
	k, nk    []string
	fwd, bwd func(string) string
	quote    func(string) string
}

func newTrigGen(d Dialect, s TriggerSpec) (*trigGen, error) {
	bad := func(field, reason string, err error) error {
		return &TriggerSpecError{Move: s.Move, Field: field, Reason: reason, Err: err}
	}
	idents := []struct{ field, v string }{{"move name", s.Move}, {"table", s.Table}, {"old column", s.Old}, {"new column", s.New}}
	if s.CrossTable() {
		idents = append(idents, struct{ field, v string }{"new table", s.NewTable})
	}
	for i, k := range s.Key {
		idents = append(idents, struct{ field, v string }{fmt.Sprintf("key column %d", i+1), k})
	}
	if s.CrossTable() {
		for i, k := range s.NewKey {
			idents = append(idents, struct{ field, v string }{fmt.Sprintf("new key column %d", i+1), k})
		}
	}
	for _, id := range idents {
		if _, err := d.Quote(id.v); err != nil {
			return nil, bad(id.field, "cannot be quoted safely", err)
		}
	}
	if len(s.Key) == 0 {
		return nil, bad("key", "the table's key columns are required", nil)
	}
	if s.CrossTable() && len(s.NewKey) != len(s.Key) {
		return nil, bad("new key", fmt.Sprintf("the new table needs %d key column(s) matching %s in order", len(s.Key), strings.Join(s.Key, ", ")), nil)
	}
	if !s.CrossTable() && s.Old == s.New {
		return nil, bad("new column", "old and new are the same column", nil)
	}
	g := &trigGen{s: s, prefix: TriggerNamePrefix(s.Move), quote: func(v string) string { return MustQuote(d, v) }}
	g.t, g.o, g.n = g.quote(s.Table), g.quote(s.Old), g.quote(s.New)
	g.nt = g.t
	for _, k := range s.Key {
		g.k = append(g.k, g.quote(k))
	}
	g.nk = g.k
	if s.CrossTable() {
		g.nt = g.quote(s.NewTable)
		g.nk = nil
		for _, k := range s.NewKey {
			g.nk = append(g.nk, g.quote(k))
		}
	}
	render := func(field string, f func(string) (string, error)) (func(string) string, error) {
		if f == nil {
			return func(src string) string { return src }, nil
		}
		// Probe with a reference that cannot occur in an expression, so the
		// check looks at the declared text, not at the reference.
		out, err := f("\x01")
		if err != nil {
			return nil, bad(field, "has no SQL expression for "+string(d.Name()), err)
		}
		for _, f := range forbiddenInExpr {
			if strings.Contains(out, f) {
				return nil, bad(field, fmt.Sprintf("the expression %q contains %q, which could end the generated statement", strings.ReplaceAll(out, "\x01", "{value}"), f), nil)
			}
		}
		if !strings.Contains(out, "\x01") {
			return nil, bad(field, "the expression does not use the value", nil)
		}
		return func(src string) string {
			r, _ := f(src)
			return r
		}, nil
	}
	var err error
	if g.fwd, err = render("forward transform", s.Forward); err != nil {
		return nil, err
	}
	if g.bwd, err = render("backward transform", s.Backward); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *trigGen) name(suffix string) string { return g.prefix + suffix }

// match returns "lhs1 = rhs1 AND lhs2 = rhs2" for key columns.
func match(lhsQual string, lhs []string, rhsQual string, rhs []string) string {
	parts := make([]string, len(lhs))
	for i := range lhs {
		l := lhs[i]
		if lhsQual != "" {
			l = lhsQual + "." + l
		}
		parts[i] = l + " = " + rhsQual + "." + rhs[i]
	}
	return strings.Join(parts, " AND ")
}

func list(qual string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		if qual != "" {
			c = qual + "." + c
		}
		out[i] = c
	}
	return strings.Join(out, ", ")
}

// NormalizeSQL collapses runs of white space, so a body read back from an
// engine compares equal to the generated one whatever line endings it kept.
func NormalizeSQL(s string) string { return strings.Join(strings.Fields(s), " ") }

// InstalledTrigger is an object found in the database.
type InstalledTrigger struct {
	Name  string
	Kind  TriggerKind
	Table string
	// Canonical is comparable with TriggerObject.Canonical (normalized).
	Canonical string
	// Drop removes it.
	Drop string
}

// ListTriggerObjects returns every trigger (and on PostgreSQL every trigger
// function) in the current schema that belongs to move, sorted by name.
func ListTriggerObjects(ctx context.Context, q dialect.Querier, d Dialect, move string) ([]InstalledTrigger, error) {
	all, err := d.listTriggerObjects(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list triggers of move %q: %w", move, err)
	}
	var out []InstalledTrigger
	for _, o := range all {
		if IsTriggerObjectOf(move, o.Name) {
			o.Canonical = NormalizeSQL(o.Canonical)
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}
