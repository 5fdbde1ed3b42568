// Package backup makes a consistent copy of a database before a step that
// cannot be undone (a move's contract drops the old column).
//
// On SQLite the copy is VACUUM INTO, through the open pool; on PostgreSQL
// it is pg_dump, on MySQL and MariaDB mariadb-dump (or mysqldump), each run
// only when installed: without one, Take refuses with a *NoToolError that
// carries the exact command to run by hand. A password never appears on a
// command line or in anything this package returns: pg_dump reads it from
// PGPASSWORD, mariadb-dump from an option file only this user can read,
// removed afterwards.
//
// A backup never overwrites a file: the copy is written to a temporary
// name in the target's directory and linked to the target only when it is
// complete, so a failure leaves nothing half-written behind and a file
// created meanwhile under the same name is refused, not replaced.
package backup
