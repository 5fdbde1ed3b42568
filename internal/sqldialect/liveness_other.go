//go:build !unix

package sqldialect

import "os"

// lockSQLiteFile needs flock; without it SQLite holds no liveness tokens.
func lockSQLiteFile(string, bool) (*os.File, bool, error) { return nil, false, ErrNoLiveness }
