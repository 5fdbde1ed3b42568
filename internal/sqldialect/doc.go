// Package sqldialect holds every SQL difference between the engines tandem
// supports, behind one interface, Dialect, with one implementation per
// engine (sqlite.go, postgres.go, mysql.go): the types of tandem's own
// tables, schema introspection, tandem's database-wide lock, the runner
// locks and liveness tokens that end with their process, the statements a
// move runs (upserts, batch updates, key ranges) and the generated sync
// triggers (triggers_*.go).
//
// It is internal: applications open and name their database with package
// dialect, and tandem's packages get the Dialect of a *dialect.DB with Of.
// Callers pass identifiers quoted with Dialect.Quote; portable SQL uses '?'
// placeholders rebound by sqlx.
package sqldialect
