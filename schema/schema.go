package schema

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/option"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// VersionsTable is where each tandem table's version is kept.
const VersionsTable = "tandem_schema_versions"

// ErrTooNew means the database holds a table at a version newer than this
// build of tandem knows: a newer release migrated it, and this one must not
// touch it.
var ErrTooNew = errors.New("table version newer than this build")

// Table is one of tandem's tables and the migrations that build it.
type Table struct {
	Name       string
	Migrations []Migration // versions 1, 2, 3, ... in order
}

// Migration takes a table from Version-1 to Version.
type Migration struct {
	Version     int
	Description string
	Steps       []Step
}

// Latest returns the version the table's last migration reaches.
func (t Table) Latest() int {
	if len(t.Migrations) == 0 {
		return 0
	}
	return t.Migrations[len(t.Migrations)-1].Version
}

// Result says what Ensure did, or would do, to one table.
type Result struct {
	Table  string
	From   int
	To     int
	Healed bool     // an interrupted migration was found and completed
	SQL    []string // statements executed (or, in a dry run, to execute)
	DryRun bool
}

func (r Result) String() string {
	switch {
	case r.DryRun && r.Healed:
		return fmt.Sprintf("Would complete the interrupted migration of table '%s' to version %d", r.Table, r.To)
	case r.DryRun && r.From == r.To:
		return fmt.Sprintf("Table '%s' is up to date (version %d)", r.Table, r.To)
	case r.DryRun:
		return fmt.Sprintf("Would migrate table '%s' from version %d to %d", r.Table, r.From, r.To)
	case r.From == r.To && !r.Healed:
		return fmt.Sprintf("Table '%s' is up to date (version %d)", r.Table, r.To)
	case r.Healed && r.From == r.To:
		return fmt.Sprintf("Healed table '%s': completed the interrupted migration to version %d", r.Table, r.To)
	case r.Healed:
		return fmt.Sprintf("Migrated table '%s' from version %d to %d (completed an interrupted step)", r.Table, r.From, r.To)
	}
	return fmt.Sprintf("Migrated table '%s' from version %d to %d", r.Table, r.From, r.To)
}

type config struct {
	dryRun   bool
	lockWait time.Duration
	logger   *slog.Logger
	// stopAfter is for tests: fail after that many steps, to simulate a crash.
	stopAfter int
}

// ErrInvalidOption means an option value is out of range (a nil logger, a
// negative duration).
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

// Option is an optional setting of Ensure; a value out of range is refused
// with an *OptionError (errors.Is ErrInvalidOption) before anything runs.
type Option struct {
	name, bad string
	val       any
	apply     func(*config)
}

func newConfig(opts []Option) (config, error) {
	cfg := config{lockWait: 60 * time.Second, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o.apply == nil {
			return cfg, &OptionError{Pkg: "schema", Option: "Option{}", Reason: "a zero Option; build options with the With... functions"}
		}
		if o.bad != "" {
			return cfg, option.Bad("schema", o.name, o.val, o.bad)
		}
		o.apply(&cfg)
	}
	return cfg, nil
}

// WithDryRun makes Ensure report the SQL it would run and change nothing.
func WithDryRun() Option {
	return Option{name: "WithDryRun", apply: func(c *config) { c.dryRun = true }}
}

// WithLockWait bounds the wait for another runner's lock (default 60s; at
// least 0).
func WithLockWait(d time.Duration) Option {
	return Option{name: "WithLockWait", val: d, bad: option.NotNegative(d), apply: func(c *config) { c.lockWait = d }}
}

// WithLogger sets a logger; Ensure is silent by default. A nil logger is
// refused.
func WithLogger(l *slog.Logger) Option {
	return Option{name: "WithLogger", val: "nil", bad: option.Logger(l), apply: func(c *config) { c.logger = l }}
}

// errInterrupted is the simulated crash used by tests.
var errInterrupted = errors.New("schema: interrupted (test hook)")

// Ensure brings every table to its latest version and returns what it did,
// one Result per table in order.
func Ensure(ctx context.Context, db *dialect.DB, tables []Table, opts ...Option) ([]Result, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if err := validate(tables); err != nil {
		return nil, err
	}
	if cfg.dryRun {
		return plan(ctx, db, tables)
	}
	var results []Result
	err = sqldialect.Of(db).Locked(ctx, db.SQLX(), "schema", cfg.lockWait, func(ctx context.Context, q dialect.Querier) error {
		results = results[:0]
		r := runner{d: sqldialect.Of(db), q: q, cfg: &cfg}
		if err := r.bootstrap(ctx); err != nil {
			return err
		}
		for _, t := range tables {
			res, err := r.ensureTable(ctx, t)
			if err != nil {
				return err
			}
			results = append(results, res)
		}
		return nil
	})
	if err != nil {
		return results, fmt.Errorf("schema ensure: %w", err)
	}
	return results, nil
}

// Versions reads the recorded version of every table (0 when absent).
func Versions(ctx context.Context, db *dialect.DB) (map[string]int, error) {
	ok, err := sqldialect.Of(db).TableExists(ctx, db, VersionsTable)
	if err != nil || !ok {
		return map[string]int{}, err
	}
	var rows []struct {
		Table   string `db:"table_name"`
		Version int    `db:"version"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT table_name, version FROM `+VersionsTable); err != nil {
		return nil, fmt.Errorf("schema versions: %w", err)
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Table] = r.Version
	}
	return out, nil
}

func validate(tables []Table) error {
	for _, t := range tables {
		if err := dialect.CheckIdentifier(t.Name); err != nil {
			return fmt.Errorf("schema: %w", err)
		}
		for i, m := range t.Migrations {
			if m.Version != i+1 {
				return fmt.Errorf("schema: table %s: migration %d has version %d, want %d", t.Name, i, m.Version, i+1)
			}
		}
	}
	return nil
}

func versionsTable() Table {
	return Table{Name: VersionsTable, Migrations: []Migration{{Version: 1, Steps: []Step{
		CreateTable{Name: VersionsTable, Columns: []Column{
			{Name: "table_name", Type: Key},
			{Name: "version", Type: BigInt},
			{Name: "pending", Type: BigInt, Null: true},
			{Name: "pending_since", Type: Timestamp, Null: true},
			{Name: "updated_at", Type: Timestamp},
		}, PrimaryKey: []string{"table_name"}},
	}}}}
}

type runner struct {
	d   sqldialect.Dialect
	q   dialect.Querier
	cfg *config
	n   int
}

func (r *runner) bootstrap(ctx context.Context) error {
	for _, s := range versionsTable().Migrations[0].Steps {
		if _, err := r.apply(ctx, s, false); err != nil {
			return err
		}
	}
	return nil
}

type versionRow struct {
	Version int           `db:"version"`
	Pending sql.NullInt64 `db:"pending"`
}

func (r *runner) readVersion(ctx context.Context, table string) (versionRow, bool, error) {
	var v versionRow
	err := r.q.GetContext(ctx, &v, r.q.Rebind(`SELECT version, pending FROM `+VersionsTable+` WHERE table_name = ?`), table)
	if errors.Is(err, sql.ErrNoRows) {
		return versionRow{}, false, nil
	}
	return v, err == nil, err
}

func (r *runner) ensureTable(ctx context.Context, t Table) (Result, error) {
	cur, exists, err := r.readVersion(ctx, t.Name)
	if err != nil {
		return Result{}, fmt.Errorf("table %s: read version: %w", t.Name, err)
	}
	res := Result{Table: t.Name, From: cur.Version, To: cur.Version}
	if cur.Version > t.Latest() {
		return res, fmt.Errorf("%w: table '%s' is at version %d, this build knows up to %d; upgrade tandem", ErrTooNew, t.Name, cur.Version, t.Latest())
	}
	if !exists {
		now := time.Now().UTC()
		if _, err := r.q.ExecContext(ctx, r.q.Rebind(`INSERT INTO `+VersionsTable+` (table_name, version, updated_at) VALUES (?, 0, ?)`), t.Name, now); err != nil {
			return res, fmt.Errorf("table %s: record version: %w", t.Name, err)
		}
	}
	for _, m := range t.Migrations {
		interrupted := cur.Pending.Valid && int(cur.Pending.Int64) == m.Version
		if m.Version <= cur.Version && !interrupted {
			continue
		}
		if interrupted {
			res.Healed = true
			r.cfg.logger.Warn("completing interrupted migration", "table", t.Name, "version", m.Version)
		}
		if _, err := r.q.ExecContext(ctx, r.q.Rebind(`UPDATE `+VersionsTable+` SET pending = ?, pending_since = ? WHERE table_name = ?`), m.Version, time.Now().UTC(), t.Name); err != nil {
			return res, fmt.Errorf("table %s: mark version %d pending: %w", t.Name, m.Version, err)
		}
		for _, s := range m.Steps {
			stmt, err := r.apply(ctx, s, true)
			if err != nil {
				return res, fmt.Errorf("table %s: migration %d (%s): %w", t.Name, m.Version, m.Description, err)
			}
			if stmt != "" {
				res.SQL = append(res.SQL, stmt)
			}
		}
		if _, err := r.q.ExecContext(ctx, r.q.Rebind(`UPDATE `+VersionsTable+` SET version = ?, pending = NULL, pending_since = NULL, updated_at = ? WHERE table_name = ?`), m.Version, time.Now().UTC(), t.Name); err != nil {
			return res, fmt.Errorf("table %s: record version %d: %w", t.Name, m.Version, err)
		}
		res.To = m.Version
		cur.Pending = sql.NullInt64{}
	}
	return res, nil
}

// apply runs one step unless the live schema shows it already done.
func (r *runner) apply(ctx context.Context, s Step, count bool) (string, error) {
	done, err := s.Done(ctx, r.d.Name(), r.q)
	if err != nil {
		return "", err
	}
	if done {
		return "", nil
	}
	if count && r.cfg.stopAfter > 0 {
		if r.n >= r.cfg.stopAfter {
			return "", errInterrupted
		}
		r.n++
	}
	stmt, err := s.SQL(r.d.Name())
	if err != nil {
		return "", err
	}
	if _, err := r.q.ExecContext(ctx, stmt); err != nil {
		return "", fmt.Errorf("%s: %w", firstLine(stmt), err)
	}
	r.cfg.logger.Info("schema step applied", "sql", stmt)
	return stmt, nil
}

// plan computes a dry run: it reads but never writes. It lists exactly the
// statements Ensure would run now: the versions table if missing, the steps
// of pending migrations whose effect is not already in the live schema, and
// the rest of an interrupted migration.
func plan(ctx context.Context, db *dialect.DB, tables []Table) ([]Result, error) {
	var out []Result
	exists, err := sqldialect.Of(db).TableExists(ctx, db, VersionsTable)
	if err != nil {
		return nil, fmt.Errorf("schema ensure: %w", err)
	}
	pending := map[string]int{}
	versions := map[string]int{}
	if !exists {
		res := Result{Table: VersionsTable, DryRun: true, To: 1}
		for _, s := range versionsTable().Migrations[0].Steps {
			stmt, err := s.SQL(db.Engine())
			if err != nil {
				return nil, err
			}
			res.SQL = append(res.SQL, stmt)
		}
		out = append(out, res)
	} else {
		var rows []struct {
			Table   string        `db:"table_name"`
			Version int           `db:"version"`
			Pending sql.NullInt64 `db:"pending"`
		}
		if err := db.SelectContext(ctx, &rows, `SELECT table_name, version, pending FROM `+VersionsTable); err != nil {
			return nil, fmt.Errorf("schema ensure: read versions: %w", err)
		}
		for _, r := range rows {
			versions[r.Table] = r.Version
			if r.Pending.Valid {
				pending[r.Table] = int(r.Pending.Int64)
			}
		}
	}
	for _, t := range tables {
		cur := versions[t.Name]
		res := Result{Table: t.Name, From: cur, To: cur, DryRun: true}
		if cur > t.Latest() {
			return out, fmt.Errorf("schema ensure: %w: table '%s' is at version %d, this build knows up to %d", ErrTooNew, t.Name, cur, t.Latest())
		}
		for _, m := range t.Migrations {
			interrupted := pending[t.Name] == m.Version
			if m.Version <= cur && !interrupted {
				continue
			}
			res.Healed = res.Healed || interrupted
			for _, s := range m.Steps {
				done, err := s.Done(ctx, db.Engine(), db)
				if err != nil {
					return out, fmt.Errorf("schema ensure: %w", err)
				}
				if done {
					continue
				}
				stmt, err := s.SQL(db.Engine())
				if err != nil {
					return out, err
				}
				res.SQL = append(res.SQL, stmt)
			}
			res.To = m.Version
		}
		out = append(out, res)
	}
	return out, nil
}

// Print writes the results as an operator reads them; with SQL it adds the
// statements, indented, under each table.
func Print(w io.Writer, results []Result, withSQL bool) {
	for _, r := range results {
		fmt.Fprintln(w, r.String())
		if withSQL {
			for _, s := range r.SQL {
				fmt.Fprintf(w, "    %s;\n", strings.ReplaceAll(s, "\n", "\n    "))
			}
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
