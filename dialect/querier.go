package dialect

import (
	"context"
	"database/sql"

	"github.com/jmoiron/sqlx"
)

// Querier is what tandem needs from a *sqlx.DB, *sqlx.Tx or *sqlx.Conn.
// SQL passed to it uses '?' placeholders, rebound with Rebind.
type Querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryxContext(ctx context.Context, query string, args ...any) (*sqlx.Rows, error)
	QueryRowxContext(ctx context.Context, query string, args ...any) *sqlx.Row
	SelectContext(ctx context.Context, dest any, query string, args ...any) error
	GetContext(ctx context.Context, dest any, query string, args ...any) error
	Rebind(query string) string
}

var (
	_ Querier = (*sqlx.DB)(nil)
	_ Querier = (*sqlx.Tx)(nil)
	_ Querier = (*sqlx.Conn)(nil)
)
