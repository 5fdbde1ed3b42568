package migfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/option"
	"github.com/tandem-go/tandem/move"
)

// Format is the kind of file Generate writes.
type Format string

// The formats.
const (
	Plain   Format = "plain"   // the statements, as `tandem moves sql` prints them
	Goose   Format = "goose"   // one goose file with Up and Down sections
	Migrate Format = "migrate" // golang-migrate's .up.sql and .down.sql pair
)

// Formats lists every format.
func Formats() []Format { return []Format{Plain, Goose, Migrate} }

// ParseFormat reads a format name.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	switch f {
	case Plain, Goose, Migrate:
		return f, nil
	}
	return "", &InputError{Field: "format", Value: s, Reason: "want goose, migrate or plain"}
}

// File is one migration file: its name (no directory) and its content.
type File struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

type config struct {
	version string
	now     func() time.Time
}

// ErrInvalidOption means an option value is out of range (a nil clock).
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

// Option is an optional setting of Generate; a value out of range is
// refused with an *OptionError (errors.Is ErrInvalidOption), a version that
// is not digits with an *InputError, before anything is rendered.
type Option struct {
	name, bad string
	val       any
	apply     func(*config)
}

// WithVersion sets the version the file names start with (digits, kept
// as given, zero padding included); when a format writes several
// migrations they take the versions after it. By default it is the
// current UTC time as YYYYMMDDHHMMSS, as `goose create` and `migrate
// create` name theirs; NextVersion picks one that follows a directory's
// files.
func WithVersion(v string) Option {
	return Option{name: "WithVersion", apply: func(c *config) { c.version = v }}
}

// WithClock replaces time.Now for the default version; a nil clock is
// refused.
func WithClock(now func() time.Time) Option {
	return Option{name: "WithClock", val: "nil", bad: option.Clock(now), apply: func(c *config) { c.now = now }}
}

// checkVersion accepts 1 to 19 digits: a version both tools parse as a
// 64-bit integer.
func checkVersion(v string) error {
	if v == "" || len(v) > 19 || strings.Trim(v, "0123456789") != "" {
		return &InputError{Field: "version", Value: v, Reason: "must be 1 to 19 digits, e.g. 20260301120000 or 00042"}
	}
	return nil
}

// addVersion is v+i with v's width.
func addVersion(v string, i int) string {
	n, _ := strconv.ParseUint(v, 10, 64) // checked by checkVersion
	return fmt.Sprintf("%0*d", len(v), n+uint64(i))
}

// plan is what a file says about one phase of a move on one engine.
type plan struct {
	m         move.Move
	d         dialect.Name
	to        move.Phase
	back      move.Phase // the phase a Down takes the move back to
	up        []dualwrite.Step
	undo      []dualwrite.Step
	noInverse string // why the phase has no inverse; "" when it has one
}

// Generate renders the DDL that enters phase to of move m on engine d as
// the files of format f. A phase with no DDL (legacy, read-new,
// write-new) is refused with an *InputError, except in Plain, which says
// so in a comment; so is a step with no SQL on d.
func Generate(m move.Move, d dialect.Name, to move.Phase, f Format, opts ...Option) ([]File, error) {
	cfg := config{now: time.Now}
	for _, o := range opts {
		if o.apply == nil {
			return nil, &OptionError{Pkg: "migfile", Option: "Option{}", Reason: "a zero Option; build options with the With... functions"}
		}
		if o.bad != "" {
			return nil, option.Bad("migfile", o.name, o.val, o.bad)
		}
		o.apply(&cfg)
	}
	if _, err := ParseFormat(string(f)); err != nil {
		return nil, err
	}
	if cfg.version == "" {
		cfg.version = cfg.now().UTC().Format("20060102150405")
	}
	if err := checkVersion(cfg.version); err != nil {
		return nil, err
	}
	p := plan{m: m, d: d, to: to}
	var err error
	if p.up, err = dualwrite.StepsFor(m, d, to); err != nil {
		return nil, err
	}
	base := fmt.Sprintf("%s_tandem_%s_%s", cfg.version, m.Name, strings.ReplaceAll(to.String(), "-", "_"))
	if f == Plain {
		return []File{{Name: base + ".sql", Content: p.plain()}}, nil
	}
	if len(p.up) == 0 {
		return nil, &InputError{Field: "phase", Value: to.String(), Reason: fmt.Sprintf("entering it changes what instances do, not the schema, so there is no file to write; the phases with DDL are write-both and contracted: tandem moves sql %s --phase write-both --format %s", m.Name, f)}
	}
	for _, s := range p.up {
		if len(s.SQL) == 0 {
			return nil, &InputError{Field: "phase", Value: to.String(), Reason: fmt.Sprintf("step %s (%s) has no SQL on %s: declare the new column's type for %s in the move's definition", s.ID, s.Description, d, d)}
		}
	}
	p.back, _ = to.Prev()
	p.undo, err = dualwrite.UndoStepsFor(m, d, to)
	var ni *dualwrite.NoInverseError
	if errors.As(err, &ni) {
		p.noInverse, err = ni.Reason, nil
	}
	if err != nil {
		return nil, err
	}
	switch f {
	case Goose:
		return []File{{Name: base + ".sql", Content: p.goose()}}, nil
	default:
		if d == dialect.MySQL {
			return p.migrateEach(cfg.version)
		}
		files := []File{{Name: base + ".up.sql", Content: p.migrateUp()}}
		if p.noInverse == "" {
			files = append(files, File{Name: base + ".down.sql", Content: p.migrateDown()})
		}
		return files, nil
	}
}

func (p plan) plain() string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- tandem move %s: entering %s (%s)\n", p.m.Name, p.to, p.d)
	if len(p.up) == 0 {
		fmt.Fprintf(&b, "-- no DDL: entering %s changes what instances do, not the schema\n", p.to)
	}
	for _, s := range p.up {
		fmt.Fprintf(&b, "\n-- %s: %s\n", s.ID, s.Description)
		for _, q := range s.SQL {
			fmt.Fprintf(&b, "%s;\n", q)
		}
	}
	return b.String()
}

// header says what the file is and when to apply it.
func (p plan) header(tool string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- tandem move %s: entering %s on %s, for %s.\n", p.m.Name, p.to, p.d, tool)
	fmt.Fprintf(&b, "-- Apply it only while `tandem moves advance %s --to %s --dry-run` shows the\n", p.m.Name, p.to)
	fmt.Fprintf(&b, "-- gate open; then record it with `tandem moves advance %s --to %s`, which\n", p.m.Name, p.to)
	b.WriteString("-- finds its steps already done and records them.\n")
	if p.to == move.Contracted {
		fmt.Fprintf(&b, "-- It drops %s.%s and its data: never apply it before the finalize gate\n", p.m.Table, p.m.Old)
		fmt.Fprintf(&b, "-- opens (`tandem moves finalize %s`), and take a backup first.\n", p.m.Name)
	}
	return b.String()
}

// undoNote says when a Down may run, or that there is none.
func (p plan) undoNote() string {
	if p.noInverse != "" {
		return fmt.Sprintf("-- No inverse: %s.\n", p.noInverse)
	}
	return fmt.Sprintf("-- Undoes %s: run it only once `tandem moves advance %s --to %s` took the move back.\n", p.to, p.m.Name, p.back)
}

// gooseStatement wraps a statement with a body, whose semicolons would
// otherwise end it early, in StatementBegin/StatementEnd.
func gooseStatement(q string) string {
	if strings.Contains(q, ";") {
		return "-- +goose StatementBegin\n" + q + ";\n-- +goose StatementEnd\n"
	}
	return q + ";\n"
}

func (p plan) goose() string {
	var b strings.Builder
	b.WriteString(p.header("goose"))
	b.WriteString("\n-- +goose Up\n")
	for _, s := range p.up {
		fmt.Fprintf(&b, "-- %s: %s\n", s.ID, s.Description)
		for _, q := range s.SQL {
			b.WriteString(gooseStatement(q))
		}
		b.WriteString("\n")
	}
	b.WriteString("-- +goose Down\n")
	b.WriteString(p.undoNote())
	if p.noInverse != "" {
		b.WriteString("-- This section changes nothing: goose down only forgets the version.\n")
	}
	for _, s := range p.undo {
		fmt.Fprintf(&b, "-- %s: %s\n", s.ID, s.Description)
		for _, q := range s.SQL {
			b.WriteString(gooseStatement(q))
		}
	}
	return b.String()
}

func (p plan) migrateUp() string {
	var b strings.Builder
	b.WriteString(p.header("golang-migrate"))
	if p.noInverse != "" {
		fmt.Fprintf(&b, "-- No down file: %s; migrate down only forgets the version.\n", p.noInverse)
	}
	for _, s := range p.up {
		fmt.Fprintf(&b, "\n-- %s: %s\n", s.ID, s.Description)
		for _, q := range s.SQL {
			b.WriteString(q + ";\n")
		}
	}
	return b.String()
}

func (p plan) migrateDown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "-- tandem move %s: undoing %s on %s, for golang-migrate.\n", p.m.Name, p.to, p.d)
	b.WriteString(p.undoNote())
	for _, s := range p.undo {
		fmt.Fprintf(&b, "\n-- %s: %s\n", s.ID, s.Description)
		for _, q := range s.SQL {
			b.WriteString(q + ";\n")
		}
	}
	return b.String()
}

// migrateEach writes one migration per statement, for golang-migrate's
// mysql driver (see the package doc): version, version+1, ...; the down
// file of each runs the statement of the undo that mirrors it.
func (p plan) migrateEach(version string) ([]File, error) {
	type stmt struct {
		step dualwrite.Step
		sql  string
	}
	var ups, undos []stmt
	for _, s := range p.up {
		for _, q := range s.SQL {
			ups = append(ups, stmt{s, q})
		}
	}
	for _, s := range p.undo {
		for _, q := range s.SQL {
			undos = append(undos, stmt{s, q})
		}
	}
	if p.noInverse == "" && len(undos) != len(ups) {
		return nil, fmt.Errorf("migfile: move %s at %s: %d statements but %d to undo them", p.m.Name, p.to, len(ups), len(undos))
	}
	var files []File
	n := len(ups)
	for i, u := range ups {
		v := addVersion(version, i)
		base := fmt.Sprintf("%s_tandem_%s_%s_%d", v, p.m.Name, strings.ReplaceAll(p.to.String(), "-", "_"), i+1)
		var b strings.Builder
		b.WriteString(p.header("golang-migrate"))
		fmt.Fprintf(&b, "-- Statement %d of %d, one a file: golang-migrate's mysql driver sends a file as one query.\n", i+1, n)
		if p.noInverse != "" {
			fmt.Fprintf(&b, "-- No down file: %s; migrate down only forgets the version.\n", p.noInverse)
		}
		fmt.Fprintf(&b, "\n-- %s: %s\n%s;\n", u.step.ID, u.step.Description, u.sql)
		files = append(files, File{Name: base + ".up.sql", Content: b.String()})
		if p.noInverse != "" {
			continue
		}
		un := undos[n-1-i]
		b.Reset()
		fmt.Fprintf(&b, "-- tandem move %s: undoing statement %d of %d of %s on %s, for golang-migrate.\n", p.m.Name, i+1, n, p.to, p.d)
		b.WriteString(p.undoNote())
		fmt.Fprintf(&b, "\n-- %s: %s\n%s;\n", un.step.ID, un.step.Description, un.sql)
		files = append(files, File{Name: base + ".down.sql", Content: b.String()})
	}
	return files, nil
}
