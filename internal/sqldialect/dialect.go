package sqldialect

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
)

// Column describes one column of a live table.
type Column struct {
	Name     string
	Type     string // as the engine reports it, upper case
	Nullable bool
}

// Dialect is the one place where engines differ.
type Dialect interface {
	Name() dialect.Name
	// Quote returns ident quoted for this engine, or an *IdentifierError when
	// the name is not a plain identifier that can be quoted safely.
	Quote(ident string) (string, error)
	// Types used by tandem's own tables.
	KeyType() string       // an indexable string, for ids and names
	TextType() string      // unbounded text
	BigIntType() string    // a 64-bit integer
	TimestampType() string // a UTC timestamp with sub-second precision
	// IsUniqueViolation reports whether err is a primary key or unique conflict.
	IsUniqueViolation(err error) bool
	// TableExists and Columns read the live schema.
	TableExists(ctx context.Context, q dialect.Querier, table string) (bool, error)
	Columns(ctx context.Context, q dialect.Querier, table string) ([]Column, error)
	IndexExists(ctx context.Context, q dialect.Querier, table, index string) (bool, error)
	// Locked runs fn while holding tandem's database-wide lock named key,
	// waiting at most wait for it. fn gets the connection to use; on SQLite
	// and PostgreSQL it is a transaction committed when fn returns nil.
	Locked(ctx context.Context, db *sqlx.DB, key string, wait time.Duration, fn func(ctx context.Context, q dialect.Querier) error) error
	// TransactionalDDL reports whether a failed DDL step rolls back cleanly.
	TransactionalDDL() bool
	// BlobType is the column type for opaque bytes.
	BlobType() string

	engineSQL
}

// engineSQL is each engine's part of the statements this package builds
// (moves.go, bindonce.go, database.go, catalog.go, expression.go,
// triggers.go): one implementation per engine file, so the builders
// themselves hold no engine switch.
type engineSQL interface {
	updateOneValue(table string, cols, exprs []string, ref string, keys []string) string
	keyCompare(cols []string, op string) (string, []int)
	forUpdate() string
	forUpdateOf(alias string) string
	distinct(a, b string) string
	upsertTail(keys []string, col string) string
	updateRows(table string, keys []string, col string, rows int) string
	bulkSession(ctx context.Context, conn dialect.Querier) (func(context.Context) error, error)
	durableCommitSQL() string
	backupIntoSQL() string
	lockBeforeInsertSelect(table, alias, cond string) string
	singleWriter() bool
	placeholder(n int) string
	rebind(q string) string
	databaseSQL(verb, quoted string) (string, error)
	tablesQuery() string
	triggersQuery() string
	boundValue(table string) (ref, from string)
	readOnly(ctx context.Context, db *sqlx.DB, fn func(queryer) error) error
	triggerObjects(g *trigGen) []TriggerObject
	listTriggerObjects(ctx context.Context, q dialect.Querier) ([]InstalledTrigger, error)
}

// Of returns the Dialect of db's engine.
func Of(db *dialect.DB) Dialect {
	d, err := For(db.Engine())
	if err != nil {
		// A DB only comes from Open or Wrap, which know the engine.
		panic(err)
	}
	return d
}

// For returns the Dialect for an engine.
func For(name dialect.Name) (Dialect, error) {
	switch name {
	case dialect.SQLite:
		return sqliteDialect{}, nil
	case dialect.Postgres:
		return postgresDialect{}, nil
	case dialect.MySQL:
		return mysqlDialect{}, nil
	}
	return nil, fmt.Errorf("dialect: %w", &dialect.DSNError{DSN: string(name), Reason: "unknown engine"})
}

func quoteWith(ident, q string) (string, error) {
	if err := dialect.CheckIdentifier(ident); err != nil {
		return "", err
	}
	return q + ident + q, nil
}

// MustQuote is Quote for names tandem itself owns; it panics on a bad one,
// which is a bug in tandem, never user input.
func MustQuote(d Dialect, ident string) string {
	s, err := d.Quote(ident)
	if err != nil {
		panic(err)
	}
	return s
}

func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("tandem:" + key))
	return int64(h.Sum64() & 0x7fffffffffffffff)
}

func infoSchemaColumns(ctx context.Context, q dialect.Querier, query, table string) ([]Column, error) {
	rows, err := q.QueryxContext(ctx, q.Rebind(query), table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var c Column
		var nullable string
		if err := rows.Scan(&c.Name, &c.Type, &nullable); err != nil {
			return nil, err
		}
		c.Type = strings.ToUpper(c.Type)
		c.Nullable = nullable == "YES"
		cols = append(cols, c)
	}
	return cols, rows.Err()
}
