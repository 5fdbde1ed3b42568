package dualwrite

import (
	"fmt"
	"sync/atomic"

	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// Statement is one statement of the application's with the move's
// fragments in it, kept per phase for a hot path: the text of the
// fragments depends only on the phase, so the statement is built once per
// phase (the first time the phase is asked for) and each call only binds
// its values. Building it per call with Select, Set, Insert and Args works
// as well; a Statement saves the text, its allocations and the fragments'
// work on every call.
//
// build writes the statement at one phase (f.Phase) with f: f.Arg for
// each placeholder of the application's own, f.Select for the moved value
// in a select list, f.Clauses or f.Columns and f.Values for writing it.
// It must give the same statement each time for the same phase, and may
// run more than once for a phase (concurrent first calls each build; one
// text is kept). A phase change between calls needs nothing: each phase
// has its own text. A Statement is safe for concurrent use.
//
//	get := router.Statement(func(f *dualwrite.Fragments) (string, error) {
//		sel, err := f.Select("")
//		return `SELECT name, ` + sel.Expr + ` FROM items` + sel.Join + ` WHERE items.id = ` + f.Arg(), err
//	})
//	q, err := get.Query(phase, itemID)
//	err = db.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&name, dualwrite.Into(q.Select, &cents))
type Statement struct {
	r     *Router
	build func(f *Fragments) (string, error)
	per   [phaseCount]atomic.Pointer[built]
}

// built is a Statement's text at one phase and where each of its
// placeholders takes its value from.
type built struct {
	sql    string
	slots  []slot
	own    int  // the application's own arguments
	values bool // the moved value is bound (Clauses, Values)
	sel    Select
	cols   columns // the phase's write columns, without values
}

// slot is one placeholder's value: the application's own argument
// number own, or (own < 0) the moved value written to column col.
type slot struct {
	own int
	col int
}

// Fragments writes one phase's statement for a Statement: the
// placeholders, in the order they appear in the text, and the move's
// fragments. Its methods are to be called in text order, as Args' are.
type Fragments struct {
	// Phase is the phase the statement is built for.
	Phase move.Phase

	r     *Router
	b     built
	n     int // placeholders written
	wrote bool
	err   error
}

// Arg returns the placeholder of the statement's next own argument: the
// call (Query or Exec) gives the own arguments in the order of these.
func (f *Fragments) Arg() string {
	f.b.slots = append(f.b.slots, slot{own: f.b.own})
	f.b.own++
	return f.placeholder()
}

func (f *Fragments) placeholder() string {
	f.n++
	return sqldialect.Placeholder(f.r.d, f.n)
}

// Select returns the select fragments at the phase, as Router.Select does;
// the Query of the statement carries it for Into. A statement selects the
// moved value once.
func (f *Fragments) Select(from string) (Select, error) {
	s, err := f.r.Select(f.Phase, from)
	if err == nil {
		f.b.sel = s
	}
	return s, err
}

// Empty reports whether the phase sets nothing in the move's table, as
// Set.Empty does: then Clauses is "" and Columns and Values are "".
func (f *Fragments) Empty() bool {
	f.shape()
	return f.b.cols.n == 0
}

// Clauses returns the SET clauses of the moved value at the phase, as
// Set.Clauses does; the value is the one given to Exec.
func (f *Fragments) Clauses() string {
	if !f.shape() {
		return ""
	}
	var out string
	for i, c := range f.b.cols.list() {
		if i > 0 {
			out += ", "
		}
		out += c.name + " = " + f.valueText(i, c)
	}
	return out
}

// Columns returns the insert columns of the moved value at the phase, as
// Insert.Columns does.
func (f *Fragments) Columns() string {
	if !f.shape() {
		return ""
	}
	return Insert{cols: f.b.cols}.Columns()
}

// Values returns the insert values of the moved value at the phase, as
// Insert.Values does; the value is the one given to Exec.
func (f *Fragments) Values() string {
	if !f.shape() {
		return ""
	}
	var out string
	for i, c := range f.b.cols.list() {
		out += ", " + f.valueText(i, c)
	}
	return out
}

// shape takes the phase's write columns, once; false when the phase
// cannot write (the error is the build's).
func (f *Fragments) shape() bool {
	if !f.wrote {
		f.wrote = true
		if !f.Phase.Valid() {
			f.err = fmt.Errorf("dualwrite: move %q: statement: %w", f.r.m.Name, &move.PhaseError{Input: f.Phase.String()})
		} else {
			f.b.cols, f.err = f.r.writeShape(f.Phase)
		}
	}
	f.b.values = true
	return f.err == nil
}

// valueText writes column col's value: its parts joined by placeholders
// of the moved value.
func (f *Fragments) valueText(col int, c column) string {
	var out string
	for i, part := range c.parts {
		if i > 0 {
			f.b.slots = append(f.b.slots, slot{own: -1, col: col})
			out += f.placeholder()
		}
		out += part
	}
	return out
}

// Statement returns a Statement built by build (see Statement).
func (r *Router) Statement(build func(f *Fragments) (string, error)) *Statement {
	return &Statement{r: r, build: build}
}

// at returns the statement at phase p, building it the first time.
func (s *Statement) at(p move.Phase) (*built, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("dualwrite: move %q: statement: %w", s.r.m.Name, &move.PhaseError{Input: p.String()})
	}
	if b := s.per[p].Load(); b != nil {
		return b, nil
	}
	f := &Fragments{Phase: p, r: s.r}
	text, err := s.build(f)
	if err == nil {
		err = f.err
	}
	if err != nil {
		return nil, err
	}
	f.b.sql = text
	b := &f.b
	s.per[p].Store(b)
	return b, nil
}

// Query is a Statement at one phase with a call's arguments, for a
// statement that reads: run SQL with Args, and scan the moved value with
// Into(Select, &v).
type Query struct {
	SQL    string
	Args   []any
	Select Select
}

// Query returns the statement at phase p with own, the statement's own
// arguments in the order of its Arg placeholders. A statement that writes
// the moved value (Clauses, Values) is run with Exec.
func (s *Statement) Query(p move.Phase, own ...any) (Query, error) {
	b, err := s.at(p)
	if err != nil {
		return Query{}, err
	}
	if b.values {
		return Query{}, fmt.Errorf("dualwrite: move %q: statement: it writes the moved value: run it with Exec", s.r.m.Name)
	}
	if len(own) != b.own {
		return Query{}, fmt.Errorf("dualwrite: move %q: statement: want %d argument(s), got %d", s.r.m.Name, b.own, len(own))
	}
	args := own
	if !inOrder(b.slots) {
		args = make([]any, len(b.slots))
		for i, sl := range b.slots {
			args[i] = own[sl.own]
		}
	}
	return Query{SQL: b.sql, Args: args, Select: b.sel}, nil
}

// inOrder reports whether slots are the own arguments 0, 1, 2 ... in turn.
func inOrder(slots []slot) bool {
	for i, sl := range slots {
		if sl.own != i {
			return false
		}
	}
	return true
}

// Exec is a Statement at one phase with a call's arguments and the moved
// value, for a statement that writes: run SQL with Args, then Finish in
// the same transaction when Needed (a cross-table move's destination row,
// as Set.Finish and Insert.Finish write it: see there). A statement whose
// build asked for no write fragment (Empty, Clauses, Columns, Values)
// writes no destination row.
type Exec struct {
	SQL  string
	Args []any
	companion
}

// Exec returns the statement at phase p writing value (in the new form),
// with own, the statement's own arguments in the order of its Arg
// placeholders. A Go Backward transform runs here; its error is a
// *move.TransformError.
func (s *Statement) Exec(p move.Phase, value any, own ...any) (Exec, error) {
	b, err := s.at(p)
	if err != nil {
		return Exec{}, err
	}
	if len(own) != b.own {
		return Exec{}, fmt.Errorf("dualwrite: move %q: statement: want %d argument(s), got %d", s.r.m.Name, b.own, len(own))
	}
	cols := b.cols
	if err := s.r.fill(&cols, value); err != nil {
		return Exec{}, err
	}
	args := make([]any, len(b.slots))
	for i, sl := range b.slots {
		if sl.own >= 0 {
			args[i] = own[sl.own]
		} else {
			args[i] = cols.c[sl.col].arg
		}
	}
	e := Exec{SQL: b.sql, Args: args}
	if b.values {
		e.companion = s.r.companionFor(p, value)
	}
	return e, nil
}
