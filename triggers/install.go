package triggers

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/jmoiron/sqlx"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/option"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

type config struct {
	dryRun bool
	logger *slog.Logger
}

// ErrInvalidOption means an option value is out of range (a nil logger).
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

// Option is an optional setting of Install and Drop; a value out of range
// is refused with an *OptionError (errors.Is ErrInvalidOption) before
// anything runs.
type Option struct {
	name, bad string
	val       any
	apply     func(*config)
}

// WithDryRun computes the statements and executes none of them.
func WithDryRun() Option {
	return Option{name: "WithDryRun", apply: func(c *config) { c.dryRun = true }}
}

// WithLogger logs each statement executed; tandem is silent by default. A
// nil logger is refused.
func WithLogger(l *slog.Logger) Option {
	return Option{name: "WithLogger", val: "nil", bad: option.Logger(l), apply: func(c *config) { c.logger = l }}
}

func newConfig(opts []Option) (config, error) {
	c := config{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o.apply == nil {
			return c, &OptionError{Pkg: "triggers", Option: "Option{}", Reason: "a zero Option; build options with the With... functions"}
		}
		if o.bad != "" {
			return c, option.Bad("triggers", o.name, o.val, o.bad)
		}
		o.apply(&c)
	}
	return c, nil
}

// Result says what Install or Drop did, or would do in a dry run. SQL holds
// the statements in the order executed, for the caller's ledger.
type Result struct {
	Move      string       `json:"move"`
	Dialect   dialect.Name `json:"dialect"`
	Created   []string     `json:"created,omitempty"`
	Replaced  []string     `json:"replaced,omitempty"` // present but not as generated: dropped and created again
	Unchanged []string     `json:"unchanged,omitempty"`
	Dropped   []string     `json:"dropped,omitempty"` // on Install, stale objects of the move no longer generated
	SQL       []string     `json:"sql"`
	DryRun    bool         `json:"dry_run"`
}

// Changed reports whether anything was (or would be) executed.
func (r Result) Changed() bool { return len(r.SQL) > 0 }

func (r Result) String() string {
	verb := func(done, would string) string {
		if r.DryRun {
			return would
		}
		return done
	}
	var parts []string
	add := func(label string, names []string) {
		if len(names) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", label, strings.Join(names, ", ")))
		}
	}
	add(verb("created", "would create"), r.Created)
	add(verb("replaced", "would replace"), r.Replaced)
	add(verb("dropped", "would drop"), r.Dropped)
	if len(parts) == 0 {
		return fmt.Sprintf("Triggers of move '%s' are up to date (%d objects)", r.Move, len(r.Unchanged))
	}
	return fmt.Sprintf("Triggers of move '%s': %s", r.Move, strings.Join(parts, "; "))
}

// State is what Check found for one object.
type State string

// The states Check reports.
const (
	StateOK         State = "ok"
	StateMissing    State = "missing"
	StateChanged    State = "changed"    // present, but its definition is not the generated one
	StateUnexpected State = "unexpected" // named as the move's, but no longer generated
)

// Status is one object's state.
type Status struct {
	Name  string `json:"name"`
	Kind  Kind   `json:"kind"`
	Table string `json:"table,omitempty"`
	State State  `json:"state"`
}

// Report is what Check found.
type Report struct {
	Move    string       `json:"move"`
	Dialect dialect.Name `json:"dialect"`
	Objects []Status     `json:"objects"`
}

// OK reports whether every object is present and as generated, and no
// stale one is left.
func (r Report) OK() bool {
	for _, o := range r.Objects {
		if o.State != StateOK {
			return false
		}
	}
	return true
}

// Err returns a *DriftError listing the objects that are not OK, or nil.
func (r Report) Err() error {
	var bad []Status
	for _, o := range r.Objects {
		if o.State != StateOK {
			bad = append(bad, o)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return &DriftError{Move: r.Move, Objects: bad}
}

// Check compares what the database holds with what ForMove generates now.
// It returns the report and, when anything differs, a *DriftError (errors.Is
// ErrDrift); other errors are I/O.
func Check(ctx context.Context, q dialect.Querier, set Set) (Report, error) {
	d, err := sqldialect.For(set.Dialect)
	if err != nil {
		return Report{}, fmt.Errorf("check triggers: %w", err)
	}
	installed, err := sqldialect.ListTriggerObjects(ctx, q, d, set.Move)
	if err != nil {
		return Report{}, fmt.Errorf("check triggers: %w", err)
	}
	have := map[string]sqldialect.InstalledTrigger{}
	for _, it := range installed {
		have[string(it.Kind)+" "+it.Name] = it
	}
	rep := Report{Move: set.Move, Dialect: set.Dialect}
	for _, o := range set.Objects {
		st := Status{Name: o.Name, Kind: o.Kind, Table: o.Table, State: StateOK}
		it, ok := have[string(o.Kind)+" "+o.Name]
		switch {
		case !ok:
			st.State = StateMissing
		case it.Canonical != o.canonical:
			st.State = StateChanged
		}
		delete(have, string(o.Kind)+" "+o.Name)
		rep.Objects = append(rep.Objects, st)
	}
	for _, it := range sortedInstalled(have) {
		rep.Objects = append(rep.Objects, Status{Name: it.Name, Kind: Kind(it.Kind), Table: it.Table, State: StateUnexpected})
	}
	return rep, rep.Err()
}

// Install makes the database hold exactly set: it creates what is missing,
// replaces what differs and drops stale objects of the move, and touches
// nothing that is already as generated, so running it twice is harmless.
// The tables and columns must exist (the move's expand step).
//
// On SQLite and PostgreSQL everything happens in one transaction (q's own,
// when q is a transaction). MySQL commits each CREATE TRIGGER on its own: an
// interrupted install leaves some triggers in place and the next Install
// completes it.
func Install(ctx context.Context, q dialect.Querier, set Set, opts ...Option) (Result, error) {
	cfg, err := newConfig(opts)
	res := Result{Move: set.Move, Dialect: set.Dialect, DryRun: cfg.dryRun}
	if err != nil {
		return res, err
	}
	d, err := sqldialect.For(set.Dialect)
	if err != nil {
		return res, fmt.Errorf("install triggers: %w", err)
	}
	if err := checkSchema(ctx, q, d, set); err != nil {
		return res, err
	}
	installed, err := sqldialect.ListTriggerObjects(ctx, q, d, set.Move)
	if err != nil {
		return res, fmt.Errorf("install triggers: %w", err)
	}
	have := map[string]sqldialect.InstalledTrigger{}
	for _, it := range installed {
		have[string(it.Kind)+" "+it.Name] = it
	}
	var creates, staleTriggers, staleFunctions []string
	for _, o := range set.Objects {
		key := string(o.Kind) + " " + o.Name
		it, ok := have[key]
		delete(have, key)
		switch {
		case !ok:
			res.Created = append(res.Created, o.Name)
			creates = append(creates, o.Create)
		case it.Canonical == o.canonical:
			res.Unchanged = append(res.Unchanged, o.Name)
		default:
			res.Replaced = append(res.Replaced, o.Name)
			if o.Kind == KindTrigger {
				creates = append(creates, o.Drop)
			}
			// A PostgreSQL function is replaced in place by CREATE OR REPLACE.
			creates = append(creates, o.Create)
		}
	}
	for _, it := range sortedInstalled(have) {
		res.Dropped = append(res.Dropped, it.Name)
		if Kind(it.Kind) == KindFunction {
			staleFunctions = append(staleFunctions, it.Drop)
		} else {
			staleTriggers = append(staleTriggers, it.Drop)
		}
	}
	// Stale triggers go first (they may call a function about to be
	// replaced), stale functions last (a new trigger no longer calls them).
	res.SQL = slices.Concat(staleTriggers, creates, staleFunctions)
	if cfg.dryRun || len(res.SQL) == 0 {
		return res, nil
	}
	if err := execAll(ctx, q, d, res.SQL, cfg.logger); err != nil {
		return res, fmt.Errorf("install triggers for move %q: %w", set.Move, err)
	}
	cfg.logger.Info("triggers installed", "move", set.Move, "dialect", set.Dialect, "created", len(res.Created), "replaced", len(res.Replaced), "dropped", len(res.Dropped))
	return res, nil
}

// Drop removes every object of the move named move, whatever generation of
// tandem made it: it reads them from the database, so it needs no
// declaration and works after the move changed. Dropping nothing is fine.
func Drop(ctx context.Context, q dialect.Querier, d dialect.Name, move string, opts ...Option) (Result, error) {
	cfg, err := newConfig(opts)
	res := Result{Move: move, Dialect: d, DryRun: cfg.dryRun}
	if err != nil {
		return res, err
	}
	if err := dialect.CheckIdentifier(move); err != nil {
		return res, &GenerateError{Move: move, Dialect: string(d), Err: err}
	}
	dl, err := sqldialect.For(d)
	if err != nil {
		return res, fmt.Errorf("drop triggers: %w", err)
	}
	installed, err := sqldialect.ListTriggerObjects(ctx, q, dl, move)
	if err != nil {
		return res, fmt.Errorf("drop triggers: %w", err)
	}
	var fns []string
	for _, it := range installed {
		res.Dropped = append(res.Dropped, it.Name)
		if Kind(it.Kind) == KindFunction {
			fns = append(fns, it.Drop)
		} else {
			res.SQL = append(res.SQL, it.Drop)
		}
	}
	res.SQL = append(res.SQL, fns...)
	if cfg.dryRun || len(res.SQL) == 0 {
		return res, nil
	}
	if err := execAll(ctx, q, dl, res.SQL, cfg.logger); err != nil {
		return res, fmt.Errorf("drop triggers for move %q: %w", move, err)
	}
	cfg.logger.Info("triggers dropped", "move", move, "dialect", d, "dropped", len(res.Dropped))
	return res, nil
}

func checkSchema(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, set Set) error {
	tables := make([]string, 0, len(set.Tables))
	for t := range set.Tables {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, t := range tables {
		cols, err := d.Columns(ctx, q, t)
		if err != nil {
			return fmt.Errorf("install triggers for move %q: read columns of %q: %w", set.Move, t, err)
		}
		if len(cols) == 0 {
			return &SchemaError{Move: set.Move, Table: t}
		}
		for _, want := range set.Tables[t] {
			if !slices.ContainsFunc(cols, func(c sqldialect.Column) bool { return c.Name == want }) {
				return &SchemaError{Move: set.Move, Table: t, Column: want}
			}
		}
	}
	return nil
}

type txBeginner interface {
	BeginTxx(ctx context.Context, opts *sql.TxOptions) (*sqlx.Tx, error)
}

// execAll runs stmts, in a transaction of its own when q is a pool and the
// engine's DDL is transactional, so a failure leaves nothing half-made.
func execAll(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, stmts []string, log *slog.Logger) error {
	run := func(q dialect.Querier) error {
		for _, s := range stmts {
			log.Debug("triggers: exec", "sql", s)
			if _, err := q.ExecContext(ctx, s); err != nil {
				return fmt.Errorf("%w\nstatement:\n%s", err, s)
			}
		}
		return nil
	}
	b, ok := q.(txBeginner)
	if !ok || !d.TransactionalDDL() {
		return run(q)
	}
	tx, err := b.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := run(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func sortedInstalled(m map[string]sqldialect.InstalledTrigger) []sqldialect.InstalledTrigger {
	out := make([]sqldialect.InstalledTrigger, 0, len(m))
	for _, it := range m {
		out = append(out, it)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
