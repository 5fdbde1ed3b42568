package sqldialect

import (
	"strings"
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
	return d.updateOneValue(table, cols, exprs, ref, keys)
}

// numberedUpdateOneValue is UpdateOneValue for the engines that number
// their parameters: param(i) is the i-th.
func numberedUpdateOneValue(table string, cols, exprs []string, ref string, keys []string, param func(int) string) string {
	sets := make([]string, len(cols))
	for i, c := range cols {
		sets[i] = c + " = " + strings.ReplaceAll(exprs[i], ref, param(1))
	}
	where := make([]string, len(keys))
	for i, k := range keys {
		where[i] = k + " = " + param(i+2)
	}
	return "UPDATE " + table + " SET " + strings.Join(sets, ", ") + " WHERE " + strings.Join(where, " AND ")
}
