//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package sqldialect

import (
	"context"
	"errors"
)

// errNoFlock: SQLite's runner lock is an flock(2), which this system lacks.
var errNoFlock = errors.New("SQLite runner locks need flock(2) (Linux, macOS or a BSD)")

func fileRunnerLock(context.Context, string) (func(context.Context) error, error) {
	return nil, errNoFlock
}

func fileRunnerLockHeld(string) (bool, error) { return false, errNoFlock }
