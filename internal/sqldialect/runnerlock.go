package sqldialect

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
)

// ErrHeld means another live process holds a runner lock.
var ErrHeld = errors.New("runner lock held by another live process")

// RunnerLock is an exclusive lock that lives exactly as long as its holder:
// the engine or the kernel releases it when the holding process ends, however
// it ends (kill -9 included), so a successor never waits for a lease to run
// out.
//
//   - PostgreSQL: a session-level advisory lock (pg_try_advisory_lock) on a
//     connection of its own, taken out of the pool for as long as the lock
//     is held. The server ends the session, and its locks, when the client's
//     socket closes.
//   - MySQL/MariaDB: GET_LOCK on a connection of its own, likewise; the name
//     carries the database's, since GET_LOCK names are server-wide.
//   - SQLite: flock(2) on a file next to the database file
//     (<file>.tandem-<key>.lock); the kernel releases it when the process
//     dies. SQLite is single-host, so every runner sees the same file.
//
// A RunnerLock is not a transaction and serializes nothing by itself: it says
// who may run. Release it with Release.
type RunnerLock struct {
	key     string
	once    sync.Once
	release func(context.Context) error
}

// TryRunnerLock takes the runner lock named key without waiting for a holder:
// it returns an error wrapping ErrHeld when another live process (or another
// RunnerLock of this process) holds it.
func TryRunnerLock(ctx context.Context, db *dialect.DB, key string) (*RunnerLock, error) {
	var (
		release func(context.Context) error
		err     error
	)
	switch db.Engine() {
	case dialect.Postgres:
		release, err = pgRunnerLock(ctx, db.SQLX(), key)
	case dialect.MySQL:
		release, err = mysqlRunnerLock(ctx, db.SQLX(), key)
	default:
		release, err = fileRunnerLock(ctx, runnerLockFile(db.DSN(), key))
	}
	if err != nil {
		return nil, fmt.Errorf("dialect: runner lock %q: %w", key, err)
	}
	return &RunnerLock{key: key, release: release}, nil
}

// Release gives the lock up. Calling it again does nothing.
func (l *RunnerLock) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() { err = l.release(ctx) })
	return err
}

// RunnerLockHeld reports whether a live process holds the runner lock named
// key. It writes nothing: on PostgreSQL it reads pg_locks, on MySQL/MariaDB
// IS_USED_LOCK; on SQLite it tries a shared flock on the lock file and drops
// it at once (a runner taking the lock in that instant retries briefly), and
// creates no file.
func RunnerLockHeld(ctx context.Context, db *dialect.DB, key string) (bool, error) {
	var held bool
	var err error
	switch db.Engine() {
	case dialect.Postgres:
		id := lockID("runner:" + key)
		err = db.GetContext(ctx, &held, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)`, id>>32, id&0xffffffff)
	case dialect.MySQL:
		var holder sql.NullInt64
		err = db.GetContext(ctx, &holder, `SELECT IS_USED_LOCK(`+mysqlLockName+`)`, "runner:"+key)
		held = holder.Valid
	default:
		held, err = fileRunnerLockHeld(runnerLockFile(db.DSN(), key))
	}
	if err != nil {
		return false, fmt.Errorf("dialect: runner lock %q: %w", key, err)
	}
	return held, nil
}

// mysqlLockName is the GET_LOCK name of a key: server-wide, so the
// database's name goes into the hash and two databases on one server do not
// block each other.
const mysqlLockName = `CONCAT('tandem:', MD5(CONCAT(DATABASE(), ':', ?)))`

// pinned takes a connection out of the pool for a session lock, and returns
// what gives it back: unlock, then close; a connection whose unlock failed
// is discarded, never handed to anyone still holding the lock.
func pinned(ctx context.Context, db *sqlx.DB, lock, unlock string, arg any) (func(context.Context) error, error) {
	conn, err := db.Connx(ctx)
	if err != nil {
		return nil, err
	}
	var got sql.NullInt64
	if err := conn.GetContext(ctx, &got, lock, arg); err != nil {
		_ = conn.Close()
		return nil, err
	}
	if !got.Valid || got.Int64 != 1 {
		_ = conn.Close()
		return nil, ErrHeld
	}
	return func(ctx context.Context) error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, err := conn.ExecContext(uctx, unlock, arg)
		if err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
		return err
	}, nil
}

func pgRunnerLock(ctx context.Context, db *sqlx.DB, key string) (func(context.Context) error, error) {
	return pinned(ctx, db, `SELECT CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END`, `SELECT pg_advisory_unlock($1)`, lockID("runner:"+key))
}

func mysqlRunnerLock(ctx context.Context, db *sqlx.DB, key string) (func(context.Context) error, error) {
	return pinned(ctx, db, `SELECT GET_LOCK(`+mysqlLockName+`, 0)`, `SELECT RELEASE_LOCK(`+mysqlLockName+`)`, "runner:"+key)
}

// runnerLockFile is the SQLite lock file of key, next to the database file.
func runnerLockFile(dsn dialect.DSN, key string) string {
	b := []byte(key)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return dsn.Path() + ".tandem-runner-" + string(b) + ".lock"
}
