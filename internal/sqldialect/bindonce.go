package sqldialect

import (
	"strconv"
	"strings"

	"github.com/tandem-go/tandem/dialect"
)

// UpdateOneValue returns an UPDATE of table that sets cols[i] to exprs[i]
// in the rows matching keys. Every occurrence of ref in an expression
// stands for one value, bound once as the statement's first argument; the
// key values follow, in the order of keys. table, cols and keys are quoted
// already.
//
// The statement is final: do not pass it through Rebind. Expressions may
// hold a literal '?' or PostgreSQL's jsonb ? operator, and no placeholder
// is counted or rewritten inside them: PostgreSQL and SQLite number their
// parameters ($1, ?1) so the value is referenced as often as needed, and
// MySQL, whose parameters cannot be numbered, reads it from a one-row
// derived table joined to the update.
func UpdateOneValue(d Dialect, table string, cols, exprs []string, ref string, keys []string) string {
	var value string
	param := func(i int) string { return "?" }
	switch d.Name() {
	case dialect.Postgres:
		value = "$1"
		param = func(i int) string { return "$" + strconv.Itoa(i) }
	case dialect.SQLite:
		value = "?1"
		param = func(i int) string { return "?" + strconv.Itoa(i) }
	default:
		value = "tandem_value.v"
	}
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + strings.ReplaceAll(exprs[i], ref, value)
	}
	where := make([]string, len(keys))
	for i, k := range keys {
		where[i] = k + " = " + param(i+2)
	}
	if d.Name() == dialect.MySQL {
		for i, k := range keys {
			where[i] = table + "." + k + " = ?"
		}
		for i, c := range cols {
			sets[i] = table + "." + c + " = " + strings.ReplaceAll(exprs[i], ref, value)
		}
		return "UPDATE " + table + " JOIN (SELECT ? AS v) tandem_value SET " + strings.Join(sets, ", ") + " WHERE " + strings.Join(where, " AND ")
	}
	return "UPDATE " + table + " SET " + strings.Join(sets, ", ") + " WHERE " + strings.Join(where, " AND ")
}
