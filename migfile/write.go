package migfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// versionOf is the version a migration file name starts with: the digits
// before the first '_' of a .sql file, as goose and golang-migrate read
// it; ok is false for other files.
func versionOf(name string) (string, bool) {
	i := strings.IndexByte(name, '_')
	if i <= 0 || !strings.HasSuffix(name, ".sql") || strings.Trim(name[:i], "0123456789") != "" {
		return "", false
	}
	return name[:i], true
}

// timestampDigits is the width of a YYYYMMDDHHMMSS version.
const timestampDigits = 14

// NextVersion returns the version for new files in dir: the one after the
// highest version of dir's migration files, with its width when they are
// numbered in sequence (00041 gives 00042); the current UTC time as
// YYYYMMDDHHMMSS when they are numbered by time or dir has none (or does
// not exist yet).
func NextVersion(dir string, now time.Time) (string, error) {
	stamp := now.UTC().Format("20060102150405")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return stamp, nil
	}
	if err != nil {
		return "", fmt.Errorf("migfile: read %s: %w", dir, err)
	}
	var (
		high  uint64
		width int
		found bool
	)
	for _, e := range entries {
		v, ok := versionOf(e.Name())
		if !ok || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			continue
		}
		if !found || n > high {
			high, width, found = n, len(v), true
		}
	}
	if !found {
		return stamp, nil
	}
	if width >= timestampDigits {
		if s, _ := strconv.ParseUint(stamp, 10, 64); s > high {
			return stamp, nil
		}
	}
	return fmt.Sprintf("%0*d", width, high+1), nil
}

// Write puts files in dir (created when missing), all or nothing. It
// refuses, writing nothing, when a file of the same name exists or a
// migration file of dir already has one of their versions (both tools
// refuse two migrations with one version): pass another version
// (WithVersion, or NextVersion). It returns the paths written.
func Write(dir string, files []File) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("migfile: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("migfile: read %s: %w", dir, err)
	}
	taken := map[string]string{}
	for _, e := range entries {
		if v, ok := versionOf(e.Name()); ok {
			taken[strings.TrimLeft(v, "0")] = e.Name()
		}
	}
	for _, f := range files {
		path := filepath.Join(dir, f.Name)
		if _, err := os.Lstat(path); err == nil {
			return nil, &ExistsError{Path: path, Reason: "already exists; nothing was written: remove it, or write the files with another version (--file-version)"}
		}
		if v, ok := versionOf(f.Name); ok {
			if other, ok := taken[strings.TrimLeft(v, "0")]; ok {
				return nil, &ExistsError{Path: path, Reason: fmt.Sprintf("version %s is taken by %s; nothing was written: pass another version (--file-version), or leave it out to take the next one", v, other)}
			}
		}
	}
	// Each file goes to a temporary name first, so a failure leaves none
	// of them behind, and a tool reading dir meanwhile sees no half file.
	var tmps, done []string
	undo := func(err error) ([]string, error) {
		for _, p := range append(tmps, done...) {
			_ = os.Remove(p)
		}
		return nil, fmt.Errorf("migfile: %w", err)
	}
	for _, f := range files {
		t, err := os.CreateTemp(dir, "."+f.Name+".tmp-*")
		if err != nil {
			return undo(err)
		}
		tmps = append(tmps, t.Name())
		if err := t.Chmod(0o644); err != nil {
			_ = t.Close()
			return undo(err)
		}
		_, werr := t.WriteString(f.Content)
		if err := errors.Join(werr, t.Sync(), t.Close()); err != nil {
			return undo(err)
		}
	}
	for i, f := range files {
		path := filepath.Join(dir, f.Name)
		if err := os.Rename(tmps[i], path); err != nil {
			return undo(err)
		}
		done = append(done, path)
	}
	return done, nil
}
