// Package triggers generates, installs, drops and checks the database
// triggers that keep a move's old and new columns in sync both ways, on
// SQLite, PostgreSQL and MySQL/MariaDB.
//
// With the triggers installed, a writer that knows only the old column (an
// old release, a cron job, an operator in the sqlite3 shell or psql) keeps
// the new column filled, and a writer that knows only the new one keeps the
// old column filled for the readers that remain. A move therefore needs no
// release of its own that writes both columns.
//
// The rule is the same on every engine: the column the writer changed wins.
//
//   - On insert, the side left NULL is derived from the other (forward for
//     new, backward for old). When both or neither are given, nothing is
//     derived.
//   - On update, if only old changed, new is derived; if only new changed,
//     old is derived, unless new already equals forward(old) (old is then a
//     valid source and stays); if both changed, both stay as written.
//   - A write a trigger makes never derives the other side back: no loops
//     and no double writes. On PostgreSQL and MySQL a derived column within
//     one table is assigned in NEW, so nothing fires again. SQLite, which
//     cannot assign NEW, writes the row a second time; the second pass finds
//     new = forward(old), or old = backward(new), and stops, whatever
//     recursive_triggers says. (So on SQLite an update that sets old to
//     exactly backward(new) keeps new; PostgreSQL and MySQL derive new
//     again. The two differ only when new holds a value forward cannot
//     produce, a row verify reports either way.)
//   - For a move to another table, inserting or updating the source row
//     writes the other table's row (creating it when missing), writing the
//     other table's row updates the source row, deleting the source row
//     deletes the other row, and deleting the other row clears old. A pair
//     already consistent in either direction is not rewritten: that is how
//     each table's trigger recognises the other's write.
//
// Each engine gets what it can do best: SQLite, which cannot assign NEW,
// gets AFTER triggers with WHEN guards; PostgreSQL a plpgsql BEFORE trigger
// that assigns NEW (AFTER triggers across tables); MySQL and MariaDB BEFORE
// triggers that SET NEW within one table and AFTER triggers across tables,
// arranged so that no trigger writes the table whose statement fired it
// (MySQL error 1442). Every statement is sent through database/sql as is;
// none needs DELIMITER.
//
// Objects are named tandem_<move>_<n> (functions tandem_<move>_f<n>), cut
// and suffixed with a hash when that would pass 63 characters. Install
// creates what is missing, replaces what differs and drops stale objects of
// the move; Check compares each object's definition in the catalog with the
// generated one; Drop removes every object of the move. All three are
// idempotent. Install and Drop return the SQL they ran for the ledger.
//
// Limits: rows are found by key, so keys are not updated while triggers
// are installed; across tables, a writer that writes both tables must
// upsert the other table's row (or UPDATE it), since the trigger may already
// have created it, and the other table's remaining columns need defaults;
// on MySQL a single statement that uses both tables (a multi-table UPDATE,
// INSERT ... SELECT from the other table) is refused with error 1442 and
// rolled back; transforms should map
// NULL to NULL. A new row's side counts as missing when it is NULL, so a
// new column with a non-NULL default is never filled on insert.
//
// Metrics: NewCollector reports whether each move's triggers are present
// and as generated when scraped (docs/observability.md).
package triggers
