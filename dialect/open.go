package dialect

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/jmoiron/sqlx"

	// The three drivers tandem supports.
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/mattn/go-sqlite3"

	"github.com/tandem-go/tandem/internal/option"
)

// pool is the embedded *sqlx.DB under a name of its own, so that DB has
// its methods without exporting a field anyone could replace.
type pool = sqlx.DB

// DB is an open pool and what tandem knows about it. It has every method
// of *sqlx.DB (ExecContext, GetContext, BeginTxx, Rebind, Close...), so it
// is a Querier too; DB and SQLX return the pool itself. Get one from Open,
// or adopt a pool the application opened with Wrap or WrapSQLX. Closing
// the DB closes the pool.
type DB struct {
	*pool
	dsn DSN
}

// Engine is the engine the pool talks to.
func (db *DB) Engine() Name { return db.dsn.Engine }

// DSN is the DSN the pool was opened with; for a pool adopted with Wrap it
// has the engine, a description of the database to print, and for SQLite
// the file.
func (db *DB) DSN() DSN { return db.dsn }

// SQLX returns the *sqlx.DB pool.
func (db *DB) SQLX() *sqlx.DB { return db.pool }

// DB returns the *sql.DB pool.
func (db *DB) DB() *sql.DB { return db.pool.DB }

type openConfig struct {
	pingTimeout time.Duration
	logger      *slog.Logger
	mustExist   bool
}

// ErrInvalidOption means an option value is out of range (a nil logger, a
// timeout that is not positive).
var ErrInvalidOption = option.ErrInvalid

// OptionError names the option and the value refused, and why.
type OptionError = option.Error

// Option is an optional setting of Open; a value out of range is refused
// with an *OptionError (errors.Is ErrInvalidOption) before anything is
// opened.
type Option struct {
	name, bad string
	val       any
	apply     func(*openConfig)
}

// WithTimeout bounds how long Open waits for the database to answer
// (default 10s; must be positive).
func WithTimeout(d time.Duration) Option {
	return Option{name: "WithTimeout", val: d, bad: option.Positive(d), apply: func(c *openConfig) { c.pingTimeout = d }}
}

// WithMustExist refuses to create a SQLite file that is not there yet, so
// a mistyped path fails instead of silently opening an empty database. Use
// it for commands that only read.
func WithMustExist() Option {
	return Option{name: "WithMustExist", apply: func(c *openConfig) { c.mustExist = true }}
}

// WithLogger sets a logger; tandem is silent by default. A nil logger is
// refused.
func WithLogger(l *slog.Logger) Option {
	return Option{name: "WithLogger", val: "nil", bad: option.Logger(l), apply: func(c *openConfig) { c.logger = l }}
}

// Open parses dsn, opens a pool and checks that the database answers.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	cfg := openConfig{pingTimeout: 10 * time.Second, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o.apply == nil {
			return nil, &OptionError{Pkg: "dialect", Option: "Option{}", Reason: "a zero Option; build options with the With... functions"}
		}
		if o.bad != "" {
			return nil, option.Bad("dialect", o.name, o.val, o.bad)
		}
		o.apply(&cfg)
	}
	parsed, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if cfg.mustExist && parsed.Engine == SQLite {
		if _, err := os.Stat(parsed.path); err != nil {
			return nil, &ConnectError{DSN: parsed.Redacted(), Err: fmt.Errorf("%w: %s (check the path; `tandem schema ensure` creates it)", ErrNoSuchFile, parsed.path)}
		}
	}
	if parsed.Engine == SQLite && !parsed.readOnly && sqliteNotWritable(parsed.path) {
		// A file this process may only read still serves reads; a write
		// then fails with a *ReadOnlyError instead of the open failing.
		parsed = parsed.readOnlySQLite()
	}
	driver, source := parsed.Driver()
	db, err := sqlx.Open(driver, source)
	if err != nil {
		return nil, &DSNError{DSN: parsed.Redacted(), Reason: scrub(err, parsed.secrets).Error()}
	}
	if parsed.Engine == SQLite {
		db.SetMaxOpenConns(8)
	} else {
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
	}
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, cfg.pingTimeout)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, &ConnectError{DSN: parsed.Redacted(), Err: scrub(err, parsed.secrets)}
	}
	cfg.logger.Debug("database opened", "dsn", parsed.Redacted(), "engine", parsed.Engine)
	return &DB{pool: db, dsn: parsed}, nil
}
