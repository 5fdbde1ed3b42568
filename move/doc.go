// Package move declares column moves: the data of one column moving to
// another column of the same table, or to a column of another table keyed
// back to the first (OpenStack Heat's resource properties moving into a
// table of their own is the classic case).
//
// A move goes through five phases, and adjacent phases are always safe to
// run side by side, which is what a rolling upgrade needs:
//
//	legacy      write old,          read old
//	write-both  write old and new,  read old
//	read-new    write old and new,  read new
//	write-new   write new,          read new
//	contracted  old column dropped
//
// This package is the declaration only: phases, the Move struct, its
// transforms and their validation, statically (Validate) and against the
// live schema (CheckSchema). It never writes. Package dualwrite runs moves
// (ledger, gates, backfill, verify, status) and package triggers generates
// the sync triggers from the same declaration.
//
// # Transforms
//
// Forward derives new from old and Backward old from new. Each is a Go
// function, a SQL expression, or both. An expression names the value it
// transforms {value}:
//
//	Forward: move.Transform{SQL: "CAST({value} AS INTEGER) * 100"}
//
// with optional per-engine overrides in Dialects. Render substitutes an
// already quoted reference such as NEW."price" (a trigger) or t."price" (a
// backfill) and wraps the result in parentheses. An expression is one
// expression: ';', '--' and '/*' are refused. A Transform with neither form
// is the identity, and copies the value as is.
package move
