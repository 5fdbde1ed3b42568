//go:build unix

package dialect

import "syscall"

// dirWritable reports whether this process may create files in dir.
func dirWritable(dir string) bool { return syscall.Access(dir, 0x2 /* W_OK */) == nil }
