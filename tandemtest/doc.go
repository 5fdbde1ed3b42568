// Package tandemtest checks an application's own code across a move's
// phases, the way Monogon tests that releases on either side of a schema
// migration run side by side (its TestMigration tests), generalized to
// every boundary of a tandem move.
//
// Run walks a move from legacy to contracted through the real ledger,
// registry, backfill, verify and finalize. At each boundary P -> P+1 it runs
// the caller's old-release code acting on P alone, then (while that code
// keeps running) the transition itself, then the new-release code acting on
// P+1 side by side with the old one, against the same database. Whatever
// the callbacks assert is asserted at every boundary, including while the
// backfill runs and while contract drops the old column. Old and New run on
// goroutines of their own, so the testing.TB they get is a wrapper: t.Fatal
// and t.FailNow record the failure and end only that call, and Run stops
// the walk from the test's goroutine before the next step (see Code).
//
// With Case.App instead of Old and New, Run exercises the application's own
// wiring: each side gets a real dualwrite.Tracker for its release, its
// heartbeats report what that tracker reports, and an operation begun with
// Tracker.Begin whose done is never called fails the walk.
//
// ForEachEngine, Open and DSN give a test outside this module a fresh
// database on every engine it is configured for: SQLite always, and
// PostgreSQL and MySQL/MariaDB when TANDEM_TEST_POSTGRES and
// TANDEM_TEST_MYSQL name a server (each test gets a database of its own,
// dropped afterwards); an engine left unset is skipped with SkipMarker in
// the message.
package tandemtest
