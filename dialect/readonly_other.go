//go:build !unix

package dialect

// dirWritable assumes a directory is writable where access(2) is missing:
// SQLite then opens a read-only WAL file as usual.
func dirWritable(string) bool { return true }
