//go:build unix

package sqldialect

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// lockSQLiteFile opens path and takes an exclusive flock without waiting.
// held is true when another open file holds the lock. With create unset,
// a file that does not exist is free and f is nil.
func lockSQLiteFile(path string, create bool) (f *os.File, held bool, err error) {
	flags := os.O_RDWR
	if create {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, false, err
		}
		flags |= os.O_CREATE
	}
	f, err = os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrNotExist) && !create {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, nil
		}
		return nil, false, err
	}
	return f, false, nil
}
