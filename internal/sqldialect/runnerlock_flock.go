//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package sqldialect

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"
)

// fileRunnerLock takes an exclusive flock on path, creating the file. A
// RunnerLockHeld probe holds a shared lock for an instant, so a refusal is
// retried for a moment before it counts.
func fileRunnerLock(ctx context.Context, path string) (func(context.Context) error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for try := 0; ; try++ {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || try == 9 {
			_ = f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, ErrHeld
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	// Closing the file releases the lock; the file stays, so the next
	// runner locks the same inode.
	return func(context.Context) error { return f.Close() }, nil
}

// fileRunnerLockHeld tries a shared flock on path and drops it at once.
func fileRunnerLockHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil // nobody ever took it here
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
}
