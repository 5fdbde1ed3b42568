// Package sqldialect holds every SQL difference between the engines tandem
// supports, behind one interface, Dialect, with one implementation per
// engine (sqlite.go, postgres.go, mysql.go): the types of tandem's own
// tables, schema introspection, tandem's database-wide lock and each
// engine's part of the statements a move runs (upserts, batch updates, key
// ranges, the bound value, locking reads), so the builders in moves.go and
// the other files hold no engine switch. The generated sync triggers have
// a file per engine too (triggers_*.go); the runner locks and liveness
// tokens that end with their process (runnerlock.go, liveness.go) still
// choose their engine's lock in place.
//
// It is internal: applications open and name their database with package
// dialect, and tandem's packages get the Dialect of a *dialect.DB with Of.
// Callers pass identifiers quoted with Dialect.Quote; portable SQL uses '?'
// placeholders rebound by sqlx.
package sqldialect
