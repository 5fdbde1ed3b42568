package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

var (
	// ErrExists means the backup's file is there already: a backup never
	// overwrites one.
	ErrExists = errors.New("backup: the file exists")
	// ErrBadPath means the backup's file cannot be created where it was
	// asked for (no name, a directory that does not exist).
	ErrBadPath = errors.New("backup: bad file name")
	// ErrNoTool means the engine's dump tool is not installed.
	ErrNoTool = errors.New("backup: the dump tool is not installed")
	// ErrFailed means the copy was started and did not complete; nothing
	// was left at the file's name.
	ErrFailed = errors.New("backup: the copy failed")
)

// ExistsError names the file that is in the way.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("backup: %s exists: a backup never overwrites a file; name a new one (or move that one away)", e.Path)
}

func (e *ExistsError) Unwrap() error { return ErrExists }

// PathError says why the file cannot be created.
type PathError struct {
	Path   string
	Reason string
}

func (e *PathError) Error() string { return fmt.Sprintf("backup: %q: %s", e.Path, e.Reason) }
func (e *PathError) Unwrap() error { return ErrBadPath }

// NoToolError names the tools looked for and the command that takes the
// copy by hand once one is installed.
type NoToolError struct {
	Engine dialect.Name
	// Tools are the programs looked for on PATH, in order.
	Tools []string
	// Command is the command line that makes the copy; it carries no
	// password (see Plan.Command).
	Command string
}

func (e *NoToolError) Error() string {
	return fmt.Sprintf("backup: no %s on PATH to back up the %s database: install it (it comes with the %s client tools), or take the copy by hand: %s",
		strings.Join(e.Tools, " or "), e.Engine, clientPackage(e.Engine), e.Command)
}

func (e *NoToolError) Unwrap() error { return ErrNoTool }

func clientPackage(engine dialect.Name) string {
	if engine == dialect.Postgres {
		return "PostgreSQL"
	}
	return "MariaDB or MySQL"
}

// DumpError is a copy that did not complete: the tool's exit and what it
// said, with any password of the DSN taken out.
type DumpError struct {
	Tool   string
	Err    error
	Stderr string
}

func (e *DumpError) Error() string {
	msg := fmt.Sprintf("backup: %s failed: %v", e.Tool, e.Err)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg + " (nothing was written at the backup's name)"
}

func (e *DumpError) Unwrap() []error { return []error{ErrFailed, e.Err} }

// Plan is how Take makes the copy.
type Plan struct {
	// Path is the backup's file, absolute.
	Path string
	// Tool is "VACUUM INTO" on SQLite, else the dump program found on
	// PATH ("pg_dump", "mariadb-dump", "mysqldump").
	Tool string
	// Command is the statement or command line that writes the copy, to
	// show: the password of a server's DSN is not in it (pg_dump reads it
	// from PGPASSWORD, mariadb-dump's --password asks for it).
	Command string
}

// Result is a backup taken.
type Result struct {
	Plan
	// Bytes is the size of the file.
	Bytes int64
	// TakenAt is when the copy started: the moment of the database it
	// holds (each engine's copy reads one snapshot).
	TakenAt time.Time
	Elapsed time.Duration
}

// Check says how Take would copy db into path, refusing what Take would
// refuse before it starts (a file there already, a directory that does
// not exist, no dump tool installed). It writes nothing.
func Check(ctx context.Context, db *dialect.DB, path string) (Plan, error) {
	_, p, err := prepare(db, path)
	return p, err
}

// Take writes a consistent copy of db into path, which must not exist.
// On SQLite it runs VACUUM INTO on db; on PostgreSQL pg_dump (a plain SQL
// script psql loads), on MySQL and MariaDB mariadb-dump or mysqldump (a
// script the mariadb or mysql client loads), each in one snapshot. The
// file is created readable by this user only. When the copy fails, nothing
// is left at path.
func Take(ctx context.Context, db *dialect.DB, path string) (Result, error) {
	d, p, err := prepare(db, path)
	if err != nil {
		return Result{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.Path), "."+filepath.Base(p.Path)+".partial-*")
	if err != nil {
		return Result{}, fmt.Errorf("%w: create a temporary file next to %s: %w", ErrFailed, p.Path, err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer func() {
		for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
			os.Remove(tmpName + suffix)
		}
	}()
	res := Result{Plan: p, TakenAt: time.Now().UTC()}
	if err := d.write(ctx, db, tmpName); err != nil {
		return Result{}, err
	}
	if err := syncFile(tmpName); err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	st, err := os.Stat(tmpName)
	if err != nil {
		return Result{}, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	if st.Size() == 0 {
		return Result{}, &DumpError{Tool: p.Tool, Err: errors.New("it wrote nothing")}
	}
	if err := publish(tmpName, p.Path); err != nil {
		return Result{}, err
	}
	res.Bytes, res.Elapsed = st.Size(), time.Since(res.TakenAt)
	return res, nil
}

// prepare checks path and finds how to copy db there.
func prepare(db *dialect.DB, path string) (dumper, Plan, error) {
	if strings.TrimSpace(path) == "" {
		return nil, Plan{}, &PathError{Path: path, Reason: "no file name"}
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, Plan{}, &PathError{Path: path, Reason: err.Error()}
	}
	if _, err := os.Lstat(abs); err == nil {
		return nil, Plan{}, &ExistsError{Path: abs}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, Plan{}, &PathError{Path: abs, Reason: err.Error()}
	}
	if st, err := os.Stat(filepath.Dir(abs)); err != nil || !st.IsDir() {
		return nil, Plan{}, &PathError{Path: abs, Reason: "its directory " + filepath.Dir(abs) + " does not exist (create it first)"}
	}
	if q, ok := sqldialect.BackupIntoSQL(sqldialect.Of(db)); ok {
		return vacuum{query: q}, Plan{Path: abs, Tool: "VACUUM INTO", Command: strings.Replace(q, "?", "'"+strings.ReplaceAll(abs, "'", "''")+"'", 1)}, nil
	}
	d, err := serverDump(db, abs)
	if err != nil {
		return nil, Plan{}, err
	}
	return d, Plan{Path: abs, Tool: d.tool, Command: d.shown}, nil
}

// dumper writes the copy into a file that exists and is empty.
type dumper interface {
	write(ctx context.Context, db *dialect.DB, file string) error
}

// vacuum is SQLite's copy: VACUUM INTO through the pool.
type vacuum struct{ query string }

func (v vacuum) write(ctx context.Context, db *dialect.DB, file string) error {
	if _, err := db.ExecContext(ctx, v.query, file); err != nil {
		return &DumpError{Tool: "VACUUM INTO", Err: err}
	}
	return nil
}

// publish gives the complete copy its name without ever replacing a file
// that took the name meanwhile: a hard link fails when the name exists.
func publish(tmp, path string) error {
	err := os.Link(tmp, path)
	if errors.Is(err, fs.ErrExist) {
		return &ExistsError{Path: path}
	}
	if err != nil {
		// A file system without hard links: rename, after a last look.
		if _, serr := os.Lstat(path); serr == nil {
			return &ExistsError{Path: path}
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("%w: %w", ErrFailed, err)
		}
	}
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync() // the new name survives a crash
		dir.Close()
	}
	return nil
}

func syncFile(name string) error {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// run runs a dump tool with extra environment, keeping at most 4 KiB of
// what it says on stderr, scrubbed of secrets.
func run(ctx context.Context, tool, path string, args, env, secrets []string) error {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = append(os.Environ(), env...) // the last value of a key wins
	var stderr bytes.Buffer
	cmd.Stderr = &limited{w: &stderr, n: 4096}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		for _, s := range secrets {
			if s != "" {
				msg = strings.ReplaceAll(msg, s, "xxxxx")
			}
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return &DumpError{Tool: tool, Err: err, Stderr: msg}
	}
	return nil
}

type limited struct {
	w *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.w.Len(); room > 0 {
		l.w.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// quote returns s as a shell word: as it is
// when it needs no quoting, else in single quotes.
func quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@,+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
