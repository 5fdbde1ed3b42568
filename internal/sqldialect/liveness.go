package sqldialect

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
)

// ErrNoLiveness means the database cannot hold liveness tokens (a SQLite
// database with no file behind it).
var ErrNoLiveness = errors.New("this database cannot hold liveness tokens")

// A liveness token is held by one process for exactly as long as it runs:
// the operating system or the database server ends it when the process
// dies, however it dies, without waiting for a timeout. Another process can
// therefore prove that the holder is gone by finding the token free.
//
//   - PostgreSQL: a session-level advisory lock (pg_try_advisory_lock) on a
//     connection the session keeps to itself. The server releases it when
//     the connection closes, which the kernel does when the process exits.
//   - MySQL/MariaDB: GET_LOCK on such a connection, released the same way.
//   - SQLite: flock on a file beside the database (<db>.live/<hash>.lock);
//     the kernel releases it when the process exits. SQLite is one host,
//     so a file lock is as wide as the database.
//
// Unlike a RunnerLock, which pins a connection per lock, a Session keeps
// all of a process's tokens on one connection: a process may register
// many instances.
//
// A Session holds the tokens of one process. Keys name what the token stands
// for; two sessions never hold one key at once.
type Session struct {
	db *dialect.DB
	mu sync.Mutex
	// conn is the session's own connection (PostgreSQL, MySQL).
	conn *sqlx.Conn
	// files are the locked files by key (SQLite).
	files map[string]*os.File
	held  map[string]bool
}

// NewSession returns a session on db; it connects on the first Hold. It
// fails with ErrNoLiveness for a SQLite database without a file.
func NewSession(db *dialect.DB) (*Session, error) {
	if db.Engine() == dialect.SQLite && liveDir(db) == "" {
		return nil, ErrNoLiveness
	}
	return &Session{db: db, files: map[string]*os.File{}, held: map[string]bool{}}, nil
}

func liveDir(db *dialect.DB) string {
	if db.DSN().Path() == "" {
		return ""
	}
	return db.DSN().Path() + ".live"
}

func lockFile(db *dialect.DB, key string) string {
	sum := sha256.Sum256([]byte(key))
	return filepath.Join(liveDir(db), hex.EncodeToString(sum[:16])+".lock")
}

// Liveness tokens live in their own key space, apart from runner locks
// (runnerlock.go), whose MySQL name form they share.
func pgLockID(key string) int64 { return lockID("live:" + key) }

func mysqlKey(key string) string { return "live:" + key }

// Hold takes the token key for this session. It fails when another session
// holds it.
func (s *Session) Hold(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[key] {
		return nil
	}
	if err := s.take(ctx, key); err != nil {
		return fmt.Errorf("dialect: hold liveness token %q: %w", key, err)
	}
	s.held[key] = true
	return nil
}

func (s *Session) take(ctx context.Context, key string) error {
	switch s.db.Engine() {
	case dialect.SQLite:
		f, held, err := lockSQLiteFile(lockFile(s.db, key), true)
		if err != nil {
			return err
		}
		if held {
			return fmt.Errorf("%w (held by another process)", dialect.ErrLocked)
		}
		s.files[key] = f
		return nil
	}
	if s.conn == nil {
		c, err := s.db.Connx(ctx)
		if err != nil {
			return err
		}
		s.conn = c
	}
	var ok sql.NullInt64
	var err error
	if s.db.Engine() == dialect.Postgres {
		var b bool
		err = s.conn.GetContext(ctx, &b, `SELECT pg_try_advisory_lock($1)`, pgLockID(key))
		ok = sql.NullInt64{Int64: map[bool]int64{true: 1}[b], Valid: true}
	} else {
		err = s.conn.GetContext(ctx, &ok, `SELECT GET_LOCK(`+mysqlLockName+`, 0)`, mysqlKey(key))
	}
	if err != nil {
		s.dropConn()
		return err
	}
	if !ok.Valid || ok.Int64 != 1 {
		return fmt.Errorf("%w (held by another session)", dialect.ErrLocked)
	}
	return nil
}

// Release gives the token back; releasing one not held does nothing.
func (s *Session) Release(ctx context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.held[key] {
		return nil
	}
	delete(s.held, key)
	switch s.db.Engine() {
	case dialect.SQLite:
		f := s.files[key]
		delete(s.files, key)
		// Remove while still locked, so nobody locks a file about to vanish.
		_ = os.Remove(f.Name())
		return f.Close()
	case dialect.Postgres:
		if s.conn != nil {
			_, err := s.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, pgLockID(key))
			return err
		}
	default:
		if s.conn != nil {
			_, err := s.conn.ExecContext(ctx, `SELECT RELEASE_LOCK(`+mysqlLockName+`)`, mysqlKey(key))
			return err
		}
	}
	return nil
}

// Keep checks that the session's connection still stands and, when the
// database lost it (a restart, a network cut), connects again and takes its
// tokens back. A token someone else took meanwhile is reported as an
// error: the holder should treat itself as superseded.
func (s *Session) Keep(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db.Engine() == dialect.SQLite || len(s.held) == 0 {
		return nil
	}
	if s.conn != nil && s.conn.PingContext(ctx) == nil {
		var one int
		if s.conn.GetContext(ctx, &one, `SELECT 1`) == nil {
			return nil
		}
	}
	s.dropConn()
	var errs []error
	for key := range s.held {
		if err := s.take(ctx, key); err != nil {
			errs = append(errs, fmt.Errorf("token %q: %w", key, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dialect: retake liveness tokens: %w", err)
	}
	return nil
}

func (s *Session) dropConn() {
	if s.conn != nil {
		// Discard the connection rather than return it to the pool: a
		// pooled connection would keep the tokens alive.
		_ = s.conn.Raw(func(any) error { return driver.ErrBadConn })
		_ = s.conn.Close()
		s.conn = nil
	}
}

// Close releases every token the session holds.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, f := range s.files {
		_ = os.Remove(f.Name())
		_ = f.Close()
		delete(s.files, key)
	}
	// Release each token before dropping the connection: the server
	// ends a closed session a moment later, and a successor checking
	// right away must already find them free.
	if s.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		for key := range s.held {
			if s.db.Engine() == dialect.Postgres {
				_, _ = s.conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, pgLockID(key))
			} else {
				_, _ = s.conn.ExecContext(ctx, `SELECT RELEASE_LOCK(`+mysqlLockName+`)`, mysqlKey(key))
			}
		}
		cancel()
	}
	s.held = map[string]bool{}
	s.dropConn()
	return nil
}

// TokenHeld reports whether a live session holds key. q must be a
// transaction or a connection of db (not a session's own): on PostgreSQL
// the probe takes the lock for q's transaction when it is free, so nobody
// can take it before q commits.
func TokenHeld(ctx context.Context, db *dialect.DB, q dialect.Querier, key string) (bool, error) {
	switch db.Engine() {
	case dialect.SQLite:
		if liveDir(db) == "" {
			return false, ErrNoLiveness
		}
		f, held, err := lockSQLiteFile(lockFile(db, key), false)
		if err != nil || held {
			return held, err
		}
		if f != nil {
			// Free: the holder is gone. Its file goes with it.
			_ = os.Remove(f.Name())
			_ = f.Close()
		}
		return false, nil
	case dialect.Postgres:
		var free bool
		err := q.GetContext(ctx, &free, `SELECT pg_try_advisory_xact_lock($1)`, pgLockID(key))
		return !free, err
	default:
		var free sql.NullInt64
		err := q.GetContext(ctx, &free, `SELECT IS_FREE_LOCK(`+mysqlLockName+`)`, mysqlKey(key))
		return free.Valid && free.Int64 == 0, err
	}
}
