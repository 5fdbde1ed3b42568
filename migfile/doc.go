// Package migfile writes a move's DDL as files that migration tools run as
// they are, for teams that keep their schema in goose or golang-migrate
// files rather than let `tandem moves advance` run it.
//
// Generate renders the DDL that enters one phase of a move on one engine
// (dualwrite.StepsFor) in one Format:
//
//   - Goose: one file, NNN_tandem_<move>_<phase>.sql, with a
//     "-- +goose Up" and a "-- +goose Down" section; a statement with a body
//     (a PostgreSQL trigger function, a MySQL or SQLite trigger's
//     BEGIN...END) is wrapped in StatementBegin/StatementEnd so goose sends
//     it whole.
//   - Migrate: the golang-migrate pair NNN_tandem_<move>_<phase>.up.sql and
//     .down.sql. On MySQL/MariaDB each statement gets a pair of its own
//     (NNN, NNN+1, ...): golang-migrate's mysql driver sends a file as one
//     query, which holds several statements only with multiStatements=true
//     on the DSN; one statement per file runs with any DSN, and since
//     MySQL commits each DDL statement by itself, golang-migrate then knows
//     exactly which statements ran when one fails.
//   - Plain: the statements as `tandem moves sql` always printed them.
//
// The Down half undoes the phase (dualwrite.UndoStepsFor): for write-both
// it drops the sync triggers and the new column or table. Contracted has
// no inverse, since it dropped the old column's data; its goose Down
// section and its golang-migrate up file say so, and no down file is
// written, so a down migration changes nothing but the tool's version.
//
// Every file names the gate it must wait for: apply it only while `tandem
// moves advance NAME --to P --dry-run` shows the gate open, then record it
// with `tandem moves advance NAME --to P`, which finds the DDL done and
// records them as already done. A contract file must never be applied before
// the finalize gate opens.
//
// Write puts files in a directory all or nothing, and refuses to replace
// a file or to reuse a version the directory already has; NextVersion
// picks the version after the directory's highest (or the current time,
// as both tools' own create commands do, when it has none).
package migfile
