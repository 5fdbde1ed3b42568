// Package schema creates and migrates tandem's own tables (the services
// registry, the move ledger) in the application's database.
//
// Each table carries its own version in tandem_schema_versions. Ensure
// creates what is missing and applies pending migrations under tandem's
// database lock (an advisory lock on PostgreSQL, GET_LOCK on MySQL/MariaDB,
// an immediate transaction on SQLite), so two runners never apply a step
// twice.
//
// A migration is a list of declarative steps (create table, add column,
// create index), not raw SQL. Before a migration runs, its version is marked
// pending; each step checks the live schema and is skipped only when what it
// creates is already there. MySQL/MariaDB commits every DDL statement on its
// own, so a run killed half way leaves the marker and some steps applied; the
// next Ensure sees the marker, applies the steps still missing, and reports
// the table as healed. Nothing is ever skipped on trust.
package schema
