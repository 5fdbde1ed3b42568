package dialect_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
)

// TestClassifyDriverErrors covers the codes by value, the ones no engine
// here can be made to return included (MariaDB's 1020 needs 11.6).
func TestClassifyDriverErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want dialect.Conflict
	}{
		{"nil", nil, ""},
		{"plain", errors.New("boom"), ""},
		{"context", context.DeadlineExceeded, ""},
		{"pg deadlock", &pgconn.PgError{Code: "40P01"}, dialect.Deadlock},
		{"pg serialization", &pgconn.PgError{Code: "40001"}, dialect.SerializationFailure},
		{"pg lock timeout", &pgconn.PgError{Code: "55P03"}, dialect.LockTimeout},
		{"pg unique", &pgconn.PgError{Code: "23505"}, ""},
		{"mysql deadlock", &mysql.MySQLError{Number: 1213}, dialect.Deadlock},
		{"mysql lock wait", &mysql.MySQLError{Number: 1205}, dialect.LockTimeout},
		{"mariadb snapshot", &mysql.MySQLError{Number: 1020}, dialect.SerializationFailure},
		{"mysql duplicate", &mysql.MySQLError{Number: 1062}, ""},
		{"sqlite busy", sqlite3.Error{Code: sqlite3.ErrBusy, ExtendedCode: sqlite3.ErrNoExtended(sqlite3.ErrBusy)}, dialect.LockTimeout},
		{"sqlite busy snapshot", sqlite3.Error{Code: sqlite3.ErrBusy, ExtendedCode: sqlite3.ErrBusySnapshot}, dialect.SerializationFailure},
		{"sqlite locked", sqlite3.Error{Code: sqlite3.ErrLocked, ExtendedCode: sqlite3.ErrLockedSharedCache}, dialect.LockTimeout},
		{"sqlite constraint", sqlite3.Error{Code: sqlite3.ErrConstraint, ExtendedCode: sqlite3.ErrConstraintUnique}, ""},
		{"wrapped", fmt.Errorf("create item: %w", &mysql.MySQLError{Number: 1213}), dialect.Deadlock},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := dialect.Classify(c.err); got != c.want {
				t.Errorf("Classify = %q, want %q", got, c.want)
			}
			if got := dialect.IsRetryable(c.err); got != (c.want != "") {
				t.Errorf("IsRetryable = %v, want %v", got, c.want != "")
			}
		})
	}
}

// TestRetryableOnEngines makes each engine return its real conflicts and
// checks how they are classified, and that a unique violation is not one.
func TestRetryableOnEngines(t *testing.T) {
	for _, e := range dbtest.Engines {
		t.Run(string(e.Name), func(t *testing.T) {
			dsn := dbtest.DSN(t, e.Name)
			db, err := dialect.Open(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			mustExec(t, db.DB(), `CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)`)
			mustExec(t, db.DB(), `INSERT INTO items (id, n) VALUES (1, 0), (2, 0)`)
			_, err = db.ExecContext(ctx, `INSERT INTO items (id, n) VALUES (1, 0)`)
			if err == nil || dialect.IsRetryable(err) {
				t.Errorf("a duplicate key (%v) must not be retryable", err)
			}
			var got map[dialect.Conflict]error
			switch e.Name {
			case dialect.SQLite:
				got = sqliteConflicts(t, ctx, strings.TrimPrefix(dsn, "sqlite://"))
			case dialect.Postgres:
				got = map[dialect.Conflict]error{
					dialect.Deadlock:             deadlock(t, ctx, db.DB(), `SET deadlock_timeout = '100ms'`),
					dialect.SerializationFailure: pgSerialization(t, ctx, db.DB()),
					dialect.LockTimeout:          lockWait(t, ctx, db.DB(), `SET lock_timeout = '100ms'`),
				}
			case dialect.MySQL:
				got = map[dialect.Conflict]error{
					dialect.Deadlock:    deadlock(t, ctx, db.DB(), `SET innodb_lock_wait_timeout = 30`),
					dialect.LockTimeout: lockWait(t, ctx, db.DB(), `SET innodb_lock_wait_timeout = 1`),
				}
			}
			for want, err := range got {
				if c := dialect.Classify(err); c != want || !dialect.IsRetryable(err) {
					t.Errorf("%s: Classify(%v) = %q, want %q", want, err, c, want)
				}
			}
		})
	}
}

func mustExec(t *testing.T, db interface {
	Exec(string, ...any) (sql.Result, error)
}, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// conns returns two connections of their own, each set up with setup.
func conns(t *testing.T, ctx context.Context, db *sql.DB, setup string) (a, b *sql.Conn) {
	t.Helper()
	var cs [2]*sql.Conn
	for i := range cs {
		c, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.ExecContext(ctx, setup); err != nil {
			t.Fatalf("%s: %v", setup, err)
		}
		cs[i] = c
	}
	return cs[0], cs[1]
}

// deadlock has two transactions lock rows 1 and 2 in opposite orders and
// returns the error of the one the engine rolled back.
func deadlock(t *testing.T, ctx context.Context, db *sql.DB, setup string) error {
	t.Helper()
	a, b := conns(t, ctx, db, setup)
	ta, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Rollback()
	tb, err := b.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Rollback()
	if _, err := ta.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var errA, errB error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errA = ta.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 2`)
		if errA != nil {
			ta.Rollback()
		}
	}()
	go func() {
		defer wg.Done()
		_, errB = tb.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`)
		if errB != nil {
			tb.Rollback()
		}
	}()
	wg.Wait()
	if (errA == nil) == (errB == nil) {
		t.Fatalf("want exactly one deadlock victim, got %v and %v", errA, errB)
	}
	return errors.Join(errA, errB)
}

// lockWait has a transaction wait for a row another one holds until the
// engine's lock timeout (set by setup) gives up.
func lockWait(t *testing.T, ctx context.Context, db *sql.DB, setup string) error {
	t.Helper()
	a, b := conns(t, ctx, db, setup)
	ta, err := a.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Rollback()
	if _, err := ta.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	_, err = b.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`)
	if err == nil {
		t.Fatal("an update of a locked row did not time out")
	}
	return err
}

// pgSerialization updates, in a REPEATABLE READ transaction, a row that
// another transaction changed after the first one's snapshot.
func pgSerialization(t *testing.T, ctx context.Context, db *sql.DB) error {
	t.Helper()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT n FROM items WHERE id = 1`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`)
	if err == nil {
		t.Fatal("a write over a newer version did not fail")
	}
	return err
}

// sqliteConflicts produces SQLite's three: a writer that finds the write
// lock taken once its busy timeout ends, a reader whose snapshot is older
// than the write it then attempts, and a shared-cache table lock.
func sqliteConflicts(t *testing.T, ctx context.Context, path string) map[dialect.Conflict]error {
	t.Helper()
	open := func(query string) *sql.DB {
		db, err := sql.Open("sqlite3", "file:"+path+"?"+query)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	out := map[dialect.Conflict]error{}
	{
		// A held write lock; the other writer's BEGIN IMMEDIATE gives up.
		w := open("_busy_timeout=1&_txlock=immediate")
		holder, err := w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.BeginTx(ctx, nil)
		_ = holder.Rollback()
		if err == nil {
			t.Fatal("a second writer began while the first held the lock")
		}
		out[dialect.LockTimeout] = err
	}
	{
		// A deferred reader whose snapshot another writer moved past.
		r := open("_busy_timeout=1&_txlock=deferred")
		tx, err := r.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT n FROM items WHERE id = 1`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if _, err := r.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 2`); err != nil {
			t.Fatal(err)
		}
		_, err = tx.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`)
		_ = tx.Rollback()
		if err == nil {
			t.Fatal("a write over a stale snapshot did not fail")
		}
		out[dialect.SerializationFailure] = err
	}
	{
		// Shared cache locks tables: a reader of a table another
		// connection of the cache is writing is refused at once.
		sc := open("cache=shared&_busy_timeout=1&_txlock=immediate")
		tx, err := sc.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE items SET n = n + 1 WHERE id = 1`); err != nil {
			t.Fatal(err)
		}
		var n int
		err = sc.QueryRowContext(ctx, `SELECT n FROM items WHERE id = 1`).Scan(&n)
		_ = tx.Rollback()
		var se sqlite3.Error
		if !errors.As(err, &se) || se.Code != sqlite3.ErrLocked {
			t.Fatalf("a read of a table locked in the shared cache: %v, want SQLITE_LOCKED", err)
		}
		if c := dialect.Classify(err); c != dialect.LockTimeout {
			t.Errorf("Classify(SQLITE_LOCKED %v) = %q", err, c)
		}
	}
	return out
}
