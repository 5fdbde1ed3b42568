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

// OpenOption configures Open.
type OpenOption func(*openConfig)

// WithPingTimeout bounds how long Open waits for the database to answer.
func WithPingTimeout(d time.Duration) OpenOption { return func(c *openConfig) { c.pingTimeout = d } }

// MustExist refuses to create a SQLite file that is not there yet, so a
// mistyped path fails instead of silently opening an empty database. Use it
// for commands that only read.
func MustExist() OpenOption { return func(c *openConfig) { c.mustExist = true } }

// WithLogger sets a logger; tandem is silent by default.
func WithLogger(l *slog.Logger) OpenOption { return func(c *openConfig) { c.logger = l } }

// Open parses dsn, opens a pool and checks that the database answers.
func Open(ctx context.Context, dsn string, opts ...OpenOption) (*DB, error) {
	cfg := openConfig{pingTimeout: 10 * time.Second, logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
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
