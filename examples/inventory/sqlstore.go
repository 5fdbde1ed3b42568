package inventory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/move"
)

// CreateTableSQL creates an item table as release 41 knows it: the price in
// whole units. It is plain SQL that SQLite, PostgreSQL and MySQL/MariaDB
// all accept.
func CreateTableSQL(table string) (string, error) {
	if err := dialect.CheckIdentifier(table); err != nil {
		return "", fmt.Errorf("inventory: table %q: %w", table, err)
	}
	return `CREATE TABLE ` + table + ` (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, quantity BIGINT NOT NULL, price BIGINT)`, nil
}

// Table is the items table of the example's processes.
const Table = "items"

// CreateTableIfMissingSQL creates the items table as release 41 knows it,
// unless it exists (once the move is contracted it has price_cents and no
// price). The processes run it at start, as an application runs its own
// migrations; it is plain SQL every engine accepts.
const CreateTableIfMissingSQL = `CREATE TABLE IF NOT EXISTS ` + Table + ` (id VARCHAR(64) NOT NULL PRIMARY KEY, name VARCHAR(200) NOT NULL, quantity BIGINT NOT NULL, price BIGINT)`

// PriceMove declares the move of table's price, in whole units, to
// price_cents: forward {value} * 100, backward {value} / 100 (integer
// division; MySQL spells it DIV). Prices are whole units, so both
// directions are exact.
func PriceMove(name, table string, releases move.Releases, triggers bool) move.Move {
	return move.Move{
		Name: name, Table: table, Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "BIGINT"}},
		Forward:  move.Transform{SQL: "{value} * 100"},
		Backward: move.Transform{SQL: "{value} / 100", Dialects: map[dialect.Name]string{dialect.MySQL: "{value} DIV 100"}},
		Releases: releases, Triggers: triggers,
		Description: table + ".price (whole units) moves to " + table + ".price_cents",
	}
}

// errInsertedMeanwhile is an insert that lost to another of the same row.
var errInsertedMeanwhile = errors.New("inserted meanwhile")

// PhaseSource says which phase of a move an operation acts on;
// *dualwrite.Tracker is one. Begin pins the phase for one operation, and
// done ends it: until then the tracker's heartbeat reports that phase at
// most, so the next transition waits for the operation.
type PhaseSource interface {
	Begin(move string) (phase move.Phase, done func())
}

// SQLStore is a Store over a database table whose price is being moved by
// a dualwrite move (PriceMove): the price is read and written through a
// dualwrite.Router at the phase this instance acts on, so old and new
// releases share the table during a rolling upgrade.
//
// Each operation keeps the phase it began with (PhaseSource.Begin) until
// its transaction has ended, so the instance's heartbeat acknowledges a
// phase only once nothing it began at an older one can still write.
type SQLStore struct {
	db     *dialect.DB
	m      move.Move
	r      *dualwrite.Router
	phases PhaseSource
	sel    string
	ins    string
	upd    string
	rename string

	check   func(stored, incoming *pb.Item) error
	applied func(item *pb.Item, at time.Time)
}

// Option configures NewSQLStore.
type Option func(*SQLStore)

// WithPutCheck runs check, inside Put's transaction, before an existing
// item is overwritten; stored holds its id, name and quantity. An error
// refuses the write and is returned as is. It is where an application puts
// its optimistic concurrency: at-least-once delivery can hand a server a
// request whose caller has long since retried it, succeeded, and written
// again, and only the data can tell that the request is late.
func WithPutCheck(check func(stored, incoming *pb.Item) error) Option {
	return func(s *SQLStore) { s.check = check }
}

// WithApplied calls applied after each Put that committed, with the time
// its commit began: from then on a reader may see the write. It is the
// request bookkeeping that tells whether a write was applied after its
// caller had been told it failed (a ghost write): compare at with when the
// caller saw the failure. applied must be quick; it runs on Put's path.
func WithApplied(applied func(item *pb.Item, at time.Time)) Option {
	return func(s *SQLStore) { s.applied = applied }
}

// NewSQLStore returns a store of items in m's table, acting on the phase
// phases gives for m (a *dualwrite.Tracker).
func NewSQLStore(db *dialect.DB, m move.Move, phases PhaseSource, opts ...Option) (*SQLStore, error) {
	r, err := dualwrite.NewRouter(m, db.Engine())
	if err != nil {
		return nil, fmt.Errorf("inventory: store: %w", err)
	}
	t, err := db.Engine().Quote(m.Table)
	if err != nil {
		return nil, fmt.Errorf("inventory: store: %w", err)
	}
	s := &SQLStore{db: db, m: m, r: r, phases: phases, rename: db.Rebind(`UPDATE ` + t + ` SET name = ? WHERE id = ?`),
		sel: db.Rebind(`SELECT name, quantity FROM ` + t + ` WHERE id = ?`),
		ins: db.Rebind(`INSERT INTO ` + t + ` (id, name, quantity) VALUES (?, ?, ?)`),
		upd: db.Rebind(`UPDATE ` + t + ` SET name = ?, quantity = ? WHERE id = ?`)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Move is the move the store's price column follows.
func (s *SQLStore) Move() move.Move { return s.m }

// Cents is the item's price in cents: price_cents, or the whole-unit price
// of a 1.0 caller.
func Cents(it *pb.Item) int64 {
	if it.GetPriceCents() != 0 {
		return it.GetPriceCents()
	}
	return it.GetPrice() * 100
}

// ErrStopped refuses an operation once the store's tracker was stopped:
// the instance was fenced, or is leaving, and must write nothing more.
var ErrStopped = errors.New("inventory: this instance has stopped acting on moves")

// begin pins the phase for one operation (see PhaseSource), or refuses it
// once the phase source reports an error (dualwrite.Tracker.Err).
func (s *SQLStore) begin() (move.Phase, func(), error) {
	if e, ok := s.phases.(interface{ Err() error }); ok {
		if err := e.Err(); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrStopped, err)
		}
	}
	p, done := s.phases.Begin(s.m.Name)
	return p, done, nil
}

// WriteSource is a PhaseSource that may refuse a write: while the operator
// has frozen writes on the move (tandem freeze), BeginWrite begins nothing
// and returns a *dualwrite.FrozenError. *dualwrite.Tracker is one.
type WriteSource interface {
	BeginWrite(move string) (phase move.Phase, done func(), err error)
}

// beginWrite is begin for an operation that writes the price: refused,
// with the freeze's *dualwrite.FrozenError as it is, while the move's
// writes are frozen (an RPC server answers it with rpcver.CodeFrozen), when
// the phase source is a WriteSource.
func (s *SQLStore) beginWrite() (move.Phase, func(), error) {
	w, ok := s.phases.(WriteSource)
	if !ok {
		return s.begin()
	}
	if e, ok := s.phases.(interface{ Err() error }); ok {
		if err := e.Err(); err != nil {
			return 0, nil, fmt.Errorf("%w: %w", ErrStopped, err)
		}
	}
	return w.BeginWrite(s.m.Name)
}

// Get reads an item; its price comes from the column the phase reads.
func (s *SQLStore) Get(ctx context.Context, id string) (*pb.Item, error) {
	p, done, err := s.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	it := &pb.Item{Id: id}
	err = s.db.QueryRowxContext(ctx, s.sel, id).Scan(&it.Name, &it.Quantity)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: get %q: %w", id, err)
	}
	v, err := s.r.Read(ctx, s.db, p, id)
	if errors.Is(err, dualwrite.ErrNoRow) {
		return nil, fmt.Errorf("get %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: get %q at %s: %w", id, p, err)
	}
	if v == nil {
		// A phase that reads a column nobody filled: say so, never 0.
		return nil, fmt.Errorf("inventory: get %q at %s: the price reads as NULL", id, p)
	}
	cents, err := toInt64(v)
	if err != nil {
		return nil, fmt.Errorf("inventory: get %q at %s: %w", id, p, err)
	}
	it.PriceCents, it.Price = cents, cents/100
	return it, nil
}

// Put writes an item, the row and its price in one transaction.
func (s *SQLStore) Put(ctx context.Context, item *pb.Item, createOnly bool) error {
	p, done, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer done()
	qty := item.GetQuantity()
	if item.GetQuantityMilli() != 0 {
		qty = item.GetQuantityMilli() / 1000
	}
	put := func(tx *sqlx.Tx) error {
		var name string
		var q int64
		err := tx.QueryRowxContext(ctx, s.sel, item.Id).Scan(&name, &q)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, s.ins, item.Id, item.Name, qty)
			if dialect.IsUniqueViolation(err) {
				// Inserted meanwhile, by another writer or by an earlier
				// attempt of this very request whose outcome its caller
				// never heard.
				return errInsertedMeanwhile
			}
		case err == nil && createOnly:
			return fmt.Errorf("put %q: %w", item.Id, ErrExists)
		case err == nil && s.check != nil:
			if err := s.check(&pb.Item{Id: item.Id, Name: name, Quantity: q}, item); err != nil {
				return errRefused{err}
			}
			fallthrough
		case err == nil:
			_, err = tx.ExecContext(ctx, s.upd, item.Name, qty, item.Id)
		}
		if err != nil {
			return err
		}
		return s.r.Write(ctx, tx, p, Cents(item), item.Id)
	}
	var committing time.Time
	err = s.tx(ctx, put, &committing)
	if errors.Is(err, errInsertedMeanwhile) {
		// The row exists now: a create-only put fails, any other updates
		// it, in a new transaction (PostgreSQL aborts the one that failed).
		if createOnly {
			return fmt.Errorf("put %q: %w", item.Id, ErrExists)
		}
		err = s.tx(ctx, put, &committing)
	}
	if err == nil && s.applied != nil {
		s.applied(item, committing)
	}
	var refused errRefused
	if errors.As(err, &refused) {
		return refused.err
	}
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("inventory: put %q at %s: %w", item.Id, p, err)
	}
	return err
}

// SetPrice sets an existing item's price, in cents, through the router
// alone: what a job that imports a price list does.
func (s *SQLStore) SetPrice(ctx context.Context, id string, cents int64) error {
	p, done, err := s.beginWrite()
	if err != nil {
		return err
	}
	defer done()
	err = s.tx(ctx, func(tx *sqlx.Tx) error { return s.r.Write(ctx, tx, p, cents, id) }, nil)
	if errors.Is(err, dualwrite.ErrNoRow) {
		return fmt.Errorf("set price of %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("inventory: set price of %q at %s: %w", id, p, err)
	}
	return nil
}

// errRefused carries a put check's error out of the transaction untouched.
type errRefused struct{ err error }

func (e errRefused) Error() string { return e.err.Error() }

// Rename changes an item's name.
func (s *SQLStore) Rename(ctx context.Context, id, name string) (*pb.Item, error) {
	err := s.tx(ctx, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, s.rename, name, id)
		if err != nil {
			return err
		}
		// Rows matched, on every engine (dialect sets clientFoundRows on MySQL).
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return fmt.Errorf("rename %q: %w", id, ErrNotFound)
		}
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return s.Get(ctx, id)
}

// tx runs fn in a transaction and commits it; committing, when not nil,
// receives the time the commit began.
func (s *SQLStore) tx(ctx context.Context, fn func(*sqlx.Tx) error, committing *time.Time) error {
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if committing != nil {
		*committing = time.Now()
	}
	return tx.Commit()
}

// toInt64 reads a whole number as any engine returns it.
func toInt64(v any) (int64, error) {
	switch x := move.Normalize(v).(type) {
	case int64:
		return x, nil
	case float64:
		return int64(x), nil
	case string:
		if n, err := strconv.ParseInt(x, 10, 64); err == nil {
			return n, nil
		}
		f, err := strconv.ParseFloat(x, 64)
		if err != nil {
			return 0, fmt.Errorf("price %q is not a number", x)
		}
		return int64(f), nil
	}
	return 0, fmt.Errorf("price %v (%T) is not a number", v, v)
}
