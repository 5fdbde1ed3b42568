package triggers

import (
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// Kind says what sort of database object an Object is.
type Kind string

// The kinds of objects generated.
const (
	KindTrigger  Kind = "trigger"
	KindFunction Kind = "function" // PostgreSQL trigger functions
)

// Object is one generated trigger or trigger function.
type Object struct {
	Name  string `json:"name"`
	Kind  Kind   `json:"kind"`
	Table string `json:"table,omitempty"` // the table a trigger fires on; empty for a function
	// Create is one statement to send through database/sql as is. It never
	// needs a DELIMITER.
	Create string `json:"create"`
	// Drop removes the object and succeeds when it is absent.
	Drop string `json:"drop"`

	canonical string
}

// Set is every object that keeps one move in sync on one engine.
type Set struct {
	Move    string       `json:"move"`
	Dialect dialect.Name `json:"dialect"`
	// Tables lists the columns each table must have, for Install's check.
	Tables  map[string][]string `json:"tables"`
	Objects []Object            `json:"objects"`
}

// ForMove generates the triggers for m on engine d. It validates m first;
// an identifier that cannot be quoted safely, or a transform that is not
// one SQL expression for d, is refused with an error matching ErrInvalid.
func ForMove(d dialect.Name, m move.Move) (Set, error) {
	gerr := func(err error) error { return &GenerateError{Move: m.Name, Dialect: string(d), Err: err} }
	dl, err := sqldialect.For(d)
	if err != nil {
		return Set{}, gerr(err)
	}
	if err := m.Validate(); err != nil {
		return Set{}, gerr(err)
	}
	spec := sqldialect.TriggerSpec{
		Move:     m.Name,
		Table:    m.Table,
		Key:      m.Key,
		Old:      m.Old,
		New:      m.New.Column,
		Forward:  renderer(m.Forward, d),
		Backward: renderer(m.Backward, d),
	}
	if m.CrossTable() {
		spec.NewTable = m.New.Table
		spec.NewKey = m.New.Key
	}
	objs, err := sqldialect.TriggerObjects(dl, spec)
	if err != nil {
		return Set{}, gerr(err)
	}
	set := Set{Move: m.Name, Dialect: d, Tables: map[string][]string{}}
	set.Tables[m.Table] = append(append([]string(nil), m.Key...), m.Old)
	if m.CrossTable() {
		set.Tables[m.New.Table] = append(append([]string(nil), m.New.Key...), m.New.Column)
	} else {
		set.Tables[m.Table] = append(set.Tables[m.Table], m.New.Column)
	}
	for _, o := range objs {
		set.Objects = append(set.Objects, Object{Name: o.Name, Kind: Kind(o.Kind), Table: o.Table, Create: o.Create, Drop: o.Drop, canonical: o.Canonical})
	}
	return set, nil
}

func renderer(t move.Transform, d dialect.Name) func(string) (string, error) {
	if t.IsIdentity() {
		return nil
	}
	return func(src string) (string, error) { return t.Render(d, src) }
}

// Names returns the objects' names in install order.
func (s Set) Names() []string {
	out := make([]string, len(s.Objects))
	for i, o := range s.Objects {
		out[i] = o.Name
	}
	return out
}

// SQL returns the statements that install the set, each ended by a line
// holding ";" alone, for review or for a migration tool. psql and the
// sqlite3 shell run it as is; the mysql client needs each statement sent on
// its own (tandem never emits DELIMITER).
func (s Set) SQL() string {
	var b strings.Builder
	b.WriteString("-- tandem triggers for move " + s.Move + " (" + string(s.Dialect) + ")\n")
	for _, o := range s.Objects {
		b.WriteString("\n" + o.Create + "\n;\n")
	}
	return b.String()
}

// DropSQL returns the statements that remove the set, triggers first.
func (s Set) DropSQL() string {
	var b strings.Builder
	b.WriteString("-- drop tandem triggers for move " + s.Move + " (" + string(s.Dialect) + ")\n")
	for _, o := range dropOrder(s.Objects) {
		b.WriteString(o.Drop + ";\n")
	}
	return b.String()
}

// dropOrder puts triggers before the functions they call.
func dropOrder(objs []Object) []Object {
	var trig, fn []Object
	for _, o := range objs {
		if o.Kind == KindFunction {
			fn = append(fn, o)
		} else {
			trig = append(trig, o)
		}
	}
	return append(trig, fn...)
}
