package dualwrite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// Fragments: the pieces of SQL a phase needs, for the application to put
// into its own SELECT, UPDATE and INSERT statements, so that routing a moved
// value costs no query of its own. The rules are Router's (see Router): a
// fragment at phase p reads and writes exactly what Read and Write do at p.
//
// Placeholders are written by an Args, in the engine's style, in the order
// they are bound: the application binds its own values through the same
// Args, in the order they appear in its statement, and runs the statement
// with Args.Values. The statement needs no Rebind (and must not get one: a
// transform expression may hold a literal '?').

// Args collects one statement's arguments and writes the placeholder of
// each: $1, $2 ... on PostgreSQL, ? elsewhere. Bind values in the order
// their placeholders appear in the statement (PostgreSQL does not mind the
// order; the other engines number by position).
type Args struct {
	d    sqldialect.Dialect
	vals []any
	ph   *placeholderTable // the engine's
	buf  [4]any            // vals' first backing array: most statements bind a few
}

// placeholderTable is an engine's first placeholders, so binding allocates
// nothing.
type placeholderTable struct {
	first []string
	qmark bool // every placeholder is '?': a fragment's text does not depend on its position
}

// NewArgs starts the arguments of a statement on engine (db.Engine()); an
// engine tandem does not know binds with '?'. own are
// arguments the statement already has placeholders for, written before any
// fragment (on PostgreSQL $1 to $len(own)); binding continues after them.
func NewArgs(engine dialect.Name, own ...any) *Args {
	d, err := sqldialect.For(engine)
	if err != nil {
		d, _ = sqldialect.For(dialect.SQLite) // '?' placeholders, as an unknown engine most likely takes
	}
	return newArgs(d, own...)
}

func newArgs(d sqldialect.Dialect, own ...any) *Args {
	return newArgsWith(d, placeholdersOf(d), own...)
}

func newArgsWith(d sqldialect.Dialect, ph *placeholderTable, own ...any) *Args {
	a := &Args{d: d, ph: ph}
	a.vals = append(a.buf[:0], own...)
	return a
}

// placeholders holds the placeholder table of each engine's style.
var placeholders = func() map[dialect.Name]*placeholderTable {
	out := map[dialect.Name]*placeholderTable{}
	for _, name := range []dialect.Name{dialect.SQLite, dialect.Postgres, dialect.MySQL} {
		d, _ := sqldialect.For(name)
		out[name] = newPlaceholderTable(d)
	}
	return out
}()

func newPlaceholderTable(d sqldialect.Dialect) *placeholderTable {
	t := &placeholderTable{}
	for n := 1; n <= 64; n++ {
		t.first = append(t.first, sqldialect.Placeholder(d, n))
	}
	t.qmark = t.first[0] == "?" && t.first[1] == "?"
	return t
}

// placeholdersOf returns d's placeholder table.
func placeholdersOf(d sqldialect.Dialect) *placeholderTable {
	if t := placeholders[d.Name()]; t != nil {
		return t
	}
	return newPlaceholderTable(d)
}

// Bind adds v and returns its placeholder.
func (a *Args) Bind(v any) string {
	a.vals = append(a.vals, v)
	if n := len(a.vals); n <= len(a.ph.first) {
		return a.ph.first[n-1]
	}
	return sqldialect.Placeholder(a.d, len(a.vals))
}

// Values returns the arguments bound so far, for ExecContext or
// QueryContext.
func (a *Args) Values() []any { return a.vals }

// Args starts the arguments of a statement on the router's engine.
func (r *Router) Args(own ...any) *Args { return newArgsWith(r.d, r.ph, own...) }

// Select is what a SELECT adds to read the moved value at one phase:
// Expr in its select list and Join after the move's table in its FROM
// clause. Scan the column with Into (typed) or pass what was scanned
// through Value: a Go Forward transform is applied after the read.
type Select struct {
	// Expr is the value's expression, qualified by the source table's name
	// or alias: the old column (through a SQL Forward), or the new one.
	Expr string
	// Join is empty unless the phase reads the new column of a cross-table
	// move: then it is " LEFT JOIN <new table> ON <keys>", so a source row
	// without a destination row reads as NULL, as Router.Read does.
	Join string

	info *selectInfo // the router's; nil in a Select the application made
}

// selectInfo is what reading a Select's column needs besides its text:
// the move's name for errors and the Go Forward transform, if any. The
// router keeps one per kind, so a Select and Into's scanner carry a
// pointer, not copies.
type selectInfo struct {
	move    string
	forward func(any) (any, error) // nil: the value is read as is
}

func (s Select) moveName() string {
	if s.info == nil {
		return ""
	}
	return s.info.move
}

func (s Select) forward() func(any) (any, error) {
	if s.info == nil {
		return nil
	}
	return s.info.forward
}

// Value turns a value scanned from Expr into the moved value in the new
// form (driver bytes become a string; a Go Forward transform is applied).
func (s Select) Value(raw any) (any, error) {
	v := move.Normalize(raw)
	forward := s.forward()
	if forward == nil {
		return v, nil
	}
	out, err := forward(v)
	if err != nil {
		return nil, &move.TransformError{Move: s.moveName(), Direction: "forward", Value: v, Err: err}
	}
	return out, nil
}

// Select returns the fragments that read the moved value at phase p. from
// is the name or alias the statement gives the move's table ("" for the
// table's own name). For a cross-table move the new table is joined under
// its own name, so a statement joins it once.
func (r *Router) Select(p move.Phase, from string) (Select, error) {
	if !p.Valid() {
		return Select{}, fmt.Errorf("dualwrite: move %q: select: %w", r.m.Name, &move.PhaseError{Input: p.String()})
	}
	src := r.tbl
	if from != "" {
		q, err := r.d.Quote(from)
		if err != nil {
			return Select{}, fmt.Errorf("dualwrite: move %q: select from %q: %w", r.m.Name, from, err)
		}
		src = q
	}
	if from == "" && r.sel[p].Expr != "" {
		return r.sel[p], nil
	}
	return r.buildSelect(p, src)
}

func (r *Router) buildSelect(p move.Phase, src string) (Select, error) {
	s := Select{info: &r.readAsIs}
	switch {
	case p.ReadsOld():
		col := src + "." + r.oldc
		s.Expr = col
		if r.m.Forward.HasGo() {
			if !r.m.Forward.IsIdentity() {
				s.info = &r.readForward
			}
		} else {
			expr, err := r.m.Forward.Render(r.d.Name(), col)
			if err != nil {
				return Select{}, fmt.Errorf("dualwrite: move %q: select: %w", r.m.Name, err)
			}
			s.Expr = expr
		}
	case !r.m.CrossTable():
		s.Expr = src + "." + r.newc
	default:
		on := make([]string, len(r.keys))
		for i := range r.keys {
			on[i] = r.ntbl + "." + r.nkeys[i] + " = " + src + "." + r.keys[i]
		}
		s.Expr = r.ntbl + "." + r.newc
		s.Join = " LEFT JOIN " + r.ntbl + " ON " + strings.Join(on, " AND ")
	}
	return s, nil
}

// column is one column a write sets in the move's table, and its value:
// parts joined by a placeholder of arg each (one placeholder: {"", ""}; a
// SQL Backward expression: its text split at each {value}).
type column struct {
	name       string
	parts      []string
	arg        any
	goBackward bool // arg is the value through the Go Backward transform
}

var onePlaceholder = []string{"", ""}

// columns holds the one or two columns a write sets, by value, so that
// building a write allocates nothing for them.
type columns struct {
	c [2]column
	n int
}

func (cs *columns) add(c column) { cs.c[cs.n] = c; cs.n++ }

func (cs *columns) list() []column { return cs.c[:cs.n] }

// size estimates the text of the columns' clauses, to grow a builder once.
func (cs *columns) size(a *Args) int {
	n := 0
	for _, c := range cs.list() {
		n += len(c.name) + 5
		for _, p := range c.parts {
			n += len(p) + 4
		}
	}
	return n
}

// bind binds the columns' values as their text would, without the text.
func (cs *columns) bind(a *Args) {
	for _, c := range cs.list() {
		for range len(c.parts) - 1 {
			a.Bind(c.arg)
		}
	}
}

func (c column) writeValue(b *strings.Builder, a *Args) {
	for i, part := range c.parts {
		if i > 0 {
			b.WriteString(a.Bind(c.arg))
		}
		b.WriteString(part)
	}
}

// Set is what an UPDATE of the move's table adds to write the moved value
// at one phase: Clauses among its SET clauses, then Finish in the same
// transaction for what the phase writes in another table.
type Set struct {
	cols columns
	text *writeText // the router's text of the phase's fragments with '?' placeholders
	companion
}

// writeText is the text of one phase's write fragments on an engine whose
// placeholders are all '?': the same for every call, so Clauses and
// Values return it and only bind.
type writeText struct {
	clauses, columns, values string
}

// Empty reports whether the phase sets nothing in the move's table
// (write-new and contracted of a cross-table move): then the statement
// has no clause of the move's, and if it sets nothing of its own either,
// only Finish remains (after checking the source row: see Finish).
func (s Set) Empty() bool { return s.cols.n == 0 }

// Clauses returns `"old" = <value>, "new" = <value>` (as the phase writes),
// or "" when Empty, binding the values in a at this point: call it where
// the clauses go in the statement, after binding what comes before them.
func (s Set) Clauses(a *Args) string {
	if s.text != nil && a.ph.qmark {
		s.cols.bind(a)
		return s.text.clauses
	}
	var b strings.Builder
	b.Grow(s.cols.size(a))
	for i, c := range s.cols.list() {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.name)
		b.WriteString(" = ")
		c.writeValue(&b, a)
	}
	return b.String()
}

// Set returns what an UPDATE adds to write value (in the new form) at
// phase p. A Go Backward transform runs here; its error is a
// *move.TransformError.
//
// When p writes the new column of a cross-table move (Needed), run Finish
// with the row's key after the UPDATE, in the same transaction: it writes
// the destination row (inserting or updating it).
func (r *Router) Set(p move.Phase, value any) (Set, error) {
	if !p.Valid() {
		return Set{}, fmt.Errorf("dualwrite: move %q: set: %w", r.m.Name, &move.PhaseError{Input: p.String()})
	}
	cols, err := r.writeColumns(p, value)
	if err != nil {
		return Set{}, err
	}
	return Set{cols: cols, text: r.writeTextFor(p), companion: r.companionFor(p, value)}, nil
}

// Insert is what an INSERT into the move's table adds to write the moved
// value of a new row at one phase: Columns after its own columns, Values
// after its own values, then Finish in the same transaction.
type Insert struct {
	cols columns
	text *writeText // as Set's
	companion
}

// Columns returns `, "old"`, `, "new"` or `, "old", "new"` (quoted, each
// after a comma, to follow the statement's own columns), or "" when the
// phase writes nothing in the move's table.
func (s Insert) Columns() string {
	if s.text != nil {
		return s.text.columns // names only: the same on every engine
	}
	var b strings.Builder
	for _, c := range s.cols.list() {
		b.WriteString(", ")
		b.WriteString(c.name)
	}
	return b.String()
}

// Values returns the values of Columns in the same form (each after a
// comma), binding them in a at this point: call it where the values go,
// after binding the statement's own values.
func (s Insert) Values(a *Args) string {
	if s.text != nil && a.ph.qmark {
		s.cols.bind(a)
		return s.text.values
	}
	var b strings.Builder
	b.Grow(s.cols.size(a))
	for _, c := range s.cols.list() {
		b.WriteString(", ")
		c.writeValue(&b, a)
	}
	return b.String()
}

// Insert returns what an INSERT adds to write value (in the new form) into
// a new row at phase p.
//
// This is the insert case of a cross-table move: once p writes the new
// column (write-both and later, Needed), the new row's value lives in the
// destination table, which Finish fills after the source row is inserted,
// in the same transaction, with the new row's key (for a key the database
// generates, read it back first, e.g. with RETURNING or LastInsertId).
// From write-new on, the source row is inserted without the old column.
// With sync triggers installed, Finish overwrites what a trigger derived,
// so the value written is the one the application meant.
func (r *Router) Insert(p move.Phase, value any) (Insert, error) {
	if !p.Valid() {
		return Insert{}, fmt.Errorf("dualwrite: move %q: insert: %w", r.m.Name, &move.PhaseError{Input: p.String()})
	}
	cols, err := r.writeColumns(p, value)
	if err != nil {
		return Insert{}, err
	}
	return Insert{cols: cols, text: r.writeTextFor(p), companion: r.companionFor(p, value)}, nil
}

// writeTextFor returns the kept text of phase p's write fragments, or nil.
func (r *Router) writeTextFor(p move.Phase) *writeText {
	if int(p) < 0 || int(p) >= len(r.wtext) {
		return nil
	}
	return r.wtext[p]
}

// writeColumns returns the columns of the move's table that phase p writes
// and the value of each.
func (r *Router) writeColumns(p move.Phase, value any) (columns, error) {
	cols, err := r.writeShape(p)
	if err != nil {
		return cols, err
	}
	return cols, r.fill(&cols, value)
}

// writeShape returns the columns of the move's table that phase p writes,
// without their values: the same for every call at p, kept by the router.
func (r *Router) writeShape(p move.Phase) (columns, error) {
	if int(p) < 0 || int(p) >= len(r.shapes) {
		return r.buildShape(p)
	}
	return r.shapes[p], r.shapeErr[p]
}

func (r *Router) buildShape(p move.Phase) (columns, error) {
	var cols columns
	if p.WritesOld() {
		switch {
		case r.m.Backward.HasGo():
			cols.add(column{name: r.oldc, parts: onePlaceholder, goBackward: true})
		case r.backwardErr != nil:
			return cols, fmt.Errorf("dualwrite: move %q: write old: %w", r.m.Name, r.backwardErr)
		default:
			// Each {value} of the expression gets a placeholder of its own
			// (the same value); the text around them is never scanned.
			cols.add(column{name: r.oldc, parts: r.backwardParts})
		}
	}
	if p.WritesNew() && !r.m.CrossTable() {
		cols.add(column{name: r.newc, parts: onePlaceholder})
	}
	return cols, nil
}

// fill sets the value of each of cols, through a Go Backward transform
// where the column is old and the move has one.
func (r *Router) fill(cols *columns, value any) error {
	for i := range cols.n {
		c := &cols.c[i]
		c.arg = value
		if c.goBackward {
			old, err := r.m.Backward.Apply(goValue(value))
			if err != nil {
				return &move.TransformError{Move: r.m.Name, Direction: "backward", Value: value, Err: err}
			}
			c.arg = old
		}
	}
	return nil
}

// goValue is what a Go Backward transform receives: the value as a driver
// would see it (an int becomes int64, a Valuer its value), as it does
// reading.
func goValue(v any) any {
	if v == nil {
		return nil
	}
	if out, err := driver.DefaultParameterConverter.ConvertValue(v); err == nil {
		return move.Normalize(out)
	}
	return v
}

// Conn is what the fragment path and the typed helpers need of a *sql.DB,
// *sql.Tx or *sql.Conn, or of sqlx's *sqlx.DB, *sqlx.Tx and *sqlx.Conn.
type Conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var (
	_ Conn = (*sql.DB)(nil)
	_ Conn = (*sql.Tx)(nil)
	_ Conn = (*sql.Conn)(nil)
)

// companion is the statement a write runs in the destination table of a
// cross-table move; empty otherwise.
type companion struct {
	move  string
	stmt  string
	value any
	nkeys int
}

// Needed reports whether Finish has a statement to run (the phase writes
// the new column of a cross-table move).
func (c companion) Needed() bool { return c.stmt != "" }

// Finish writes the destination row of a cross-table move for the source
// row with key (inserting or updating it), when the phase writes the new
// column; it does nothing otherwise. Run it after the application's INSERT
// or UPDATE of the source row, in the same transaction, and only when that
// statement found the row (its RowsAffected): a destination row hangs off
// its source row, and Finish does not read the source table (a MySQL
// trigger on the new table that writes the source table forbids it). The
// destination table tandem's expand step creates refuses a key the source
// table lacks (a foreign key); WriteValue checks the source row itself.
func (c companion) Finish(ctx context.Context, q Conn, key ...any) error {
	if c.stmt == "" {
		return nil
	}
	if len(key) != c.nkeys {
		return fmt.Errorf("dualwrite: move %q: finish: want %d key value(s), got %d", c.move, c.nkeys, len(key))
	}
	args := make([]any, 0, 1+len(key))
	args = append(append(args, key...), c.value)
	if _, err := q.ExecContext(ctx, c.stmt, args...); err != nil {
		return fmt.Errorf("dualwrite: move %q: write the new table: %w", c.move, err)
	}
	return nil
}

func (r *Router) companionFor(p move.Phase, value any) companion {
	if !p.WritesNew() || !r.m.CrossTable() {
		return companion{}
	}
	return companion{move: r.m.Name, stmt: r.upsertNew, value: value, nkeys: len(r.keys)}
}

// prepareFragments computes what does not depend on the value: the select
// fragments of every phase under the table's own name, the Backward
// expression split at its {value}s and the destination upsert.
func (r *Router) prepareFragments() {
	for _, p := range move.Phases() {
		s, err := r.buildSelect(p, r.tbl)
		if err != nil {
			// A Forward with neither Go nor SQL for this engine: Select
			// reports it when asked.
			continue
		}
		r.sel[p] = s
	}
	if !r.m.Backward.HasGo() {
		// A Backward with no expression for this engine fails the writes
		// of old, as Router.Write does, not the router.
		expr, err := r.m.Backward.Render(r.d.Name(), valueRef)
		r.backwardParts, r.backwardErr = strings.Split(expr, valueRef), err
	}
	if r.m.CrossTable() {
		// The key, then the value. The statement holds quoted names only,
		// so numbering its '?' is safe.
		r.upsertNew = sqldialect.Rebind(r.d, sqldialect.UpsertSQL(r.d, r.ntbl, r.nkeys, r.newc))
	}
	// The write fragments' text per phase, for engines whose placeholders
	// are all '?' (the text does not depend on how many come before).
	qmark := sqldialect.Placeholder(r.d, 1) == sqldialect.Placeholder(r.d, 2)
	for _, p := range move.Phases() {
		cols, err := r.buildShape(p)
		r.shapes[p], r.shapeErr[p] = cols, err
		if err != nil {
			continue // the writes of this phase report it
		}
		if qmark {
			a := newArgs(r.d) // build the text: the Sets and Inserts have none yet
			set := Set{cols: cols}
			ins := Insert{cols: cols}
			r.wtext[p] = &writeText{clauses: set.Clauses(a), columns: ins.Columns(), values: ins.Values(a)}
		}
		// WriteValue's own statement: the clauses, then the key.
		if cols.n > 0 {
			a := newArgs(r.d)
			where := make([]string, len(r.keys))
			set := Set{cols: cols}
			clauses := set.Clauses(a)
			for i, k := range r.keys {
				where[i] = k + " = " + a.Bind(nil)
			}
			r.write[p] = "UPDATE " + r.tbl + " SET " + clauses + " WHERE " + strings.Join(where, " AND ")
		}
	}
	// Every move: an update that reports no row checks it with this.
	r.lockSrc = sqldialect.Rebind(r.d, `SELECT 1 FROM `+r.tbl+` WHERE `+r.whereKey+sqldialect.ForUpdate(r.d))
	for _, p := range move.Phases() {
		if s := r.sel[p]; s.Expr != "" {
			where := make([]string, len(r.keys))
			for i, k := range r.keys {
				where[i] = r.tbl + "." + k + " = " + sqldialect.Placeholder(r.d, i+1)
			}
			r.read[p] = "SELECT " + s.Expr + " FROM " + r.tbl + s.Join + " WHERE " + strings.Join(where, " AND ")
		}
	}
}
