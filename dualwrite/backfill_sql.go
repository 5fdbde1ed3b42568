package dualwrite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

func pick(vals []any, idx []int) []any {
	out := make([]any, len(idx))
	for i, j := range idx {
		out[i] = vals[j]
	}
	return out
}

// maxKey returns the highest key of the source table (of the new table
// for a reverse backfill), nil when empty.
func (b *bf) maxKey(ctx context.Context, q dialect.Querier) ([]any, error) {
	desc := make([]string, len(b.keys))
	for i, k := range b.keys {
		desc[i] = k + " DESC"
	}
	rows, err := q.QueryxContext(ctx, `SELECT `+strings.Join(b.keys, ", ")+` FROM `+b.tbl+` ORDER BY `+strings.Join(desc, ", ")+sqldialect.LimitSQL(1))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	vals, err := rows.SliceScan()
	if err != nil {
		return nil, err
	}
	for i := range vals {
		vals[i] = move.Normalize(vals[i])
	}
	return vals, rows.Err()
}

// rangeCond is "key > cursor AND key <= upper" with its arguments.
func (b *bf) rangeCond(keys []string, cursor, upper []any) (string, []any) {
	var conds []string
	var args []any
	if cursor != nil {
		c, idx := sqldialect.KeyAfter(b.d, keys)
		conds, args = append(conds, c), append(args, pick(cursor, idx)...)
	}
	c, idx := sqldialect.KeyAtMost(b.d, keys)
	conds, args = append(conds, c), append(args, pick(upper, idx)...)
	return strings.Join(conds, " AND "), args
}

func qualify(alias string, cols []string) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = alias + "." + c
	}
	return out
}

func keyEqual(a, b []any) bool {
	return encodeKey(a) == encodeKey(b)
}

// probe finds the upper key of the next batch and how many rows it holds.
//
// The inner query is bounded below only: "the first size keys after the
// cursor, in key order" is an ordered walk of the primary key's index that
// stops after size entries, and the planner has no cheaper answer whatever
// it knows about the table. The bound is applied outside it. With both ends
// inside, a PostgreSQL table without statistics (freshly loaded, never
// analysed) is estimated at 0.5% of its rows per range, so the planner
// chose a bitmap scan of the whole range, every row left, then a sort:
// each batch cost what was left of the table.
func (b *bf) probe(ctx context.Context, q dialect.Querier, size int) ([]any, int, error) {
	order := strings.Join(b.keys, ", ")
	inner := `SELECT ` + order + ` FROM ` + b.tbl
	var args []any
	if b.cursor != nil {
		c, idx := sqldialect.KeyAfter(b.d, b.keys)
		inner += ` WHERE ` + c
		args = pick(b.cursor, idx)
	}
	inner += ` ORDER BY ` + order + sqldialect.LimitSQL(size)
	atMost, idx := sqldialect.KeyAtMost(b.d, b.keys)
	args = append(args, pick(b.bound, idx)...)
	outer := ` FROM (` + inner + `) s WHERE ` + atMost
	if len(b.keys) == 1 {
		var cnt int
		var mx any
		if err := q.QueryRowxContext(ctx, q.Rebind(`SELECT COUNT(*), MAX(`+b.keys[0]+`)`+outer), args...).Scan(&cnt, &mx); err != nil {
			return nil, 0, err
		}
		if cnt == 0 {
			return nil, 0, nil
		}
		return []any{move.Normalize(mx)}, cnt, nil
	}
	rows, err := q.QueryxContext(ctx, q.Rebind(`SELECT `+order+outer+` ORDER BY `+order), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var last []any
	n := 0
	for rows.Next() {
		if last, err = rows.SliceScan(); err != nil {
			return nil, 0, err
		}
		n++
	}
	for i := range last {
		last[i] = move.Normalize(last[i])
	}
	return last, n, rows.Err()
}

// applySQL moves the rows in (cursor, upper] with one statement.
func (b *bf) applySQL(ctx context.Context, q dialect.Querier, upper []any) (int64, error) {
	r, err := b.execSQL(ctx, q, upper)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (b *bf) execSQL(ctx context.Context, q dialect.Querier, upper []any) (sql.Result, error) {
	m := b.m
	switch {
	case !m.CrossTable():
		expr, err := b.transform.Render(b.d.Name(), b.srcCol)
		if err != nil {
			return nil, err
		}
		cond, args := b.rangeCond(b.keys, b.cursor, upper)
		return q.ExecContext(ctx, q.Rebind(`UPDATE `+b.tbl+` SET `+b.dstCol+` = `+expr+` WHERE `+cond), args...)
	case !b.cfg.reverse:
		expr, err := b.transform.Render(b.d.Name(), "s."+b.srcCol)
		if err != nil {
			return nil, err
		}
		cond, args := b.rangeCond(qualify("s", b.keys), b.cursor, upper)
		// Lock the source rows first where the upsert would not: a
		// writer changing old meanwhile would be overwritten with a stale
		// value.
		if lock := sqldialect.LockBeforeInsertSelectSQL(b.d, b.tbl, "s", cond); lock != "" {
			if _, err := q.ExecContext(ctx, q.Rebind(lock), args...); err != nil {
				return nil, err
			}
		}
		sel := `SELECT ` + strings.Join(qualify("s", b.keys), ", ") + `, ` + expr + ` FROM ` + b.tbl + ` s WHERE ` + cond
		return q.ExecContext(ctx, q.Rebind(sqldialect.UpsertSelectSQL(b.d, b.ntbl, b.nkeys, b.dstCol, sel)), args...)
	default:
		// Reverse across tables: old = Backward(new of the matching row).
		expr, err := b.transform.Render(b.d.Name(), "n."+b.srcCol)
		if err != nil {
			return nil, err
		}
		on := make([]string, len(b.keys))
		for i := range b.keys {
			on[i] = "n." + b.nkeys[i] + " = " + b.tbl + "." + b.keys[i]
		}
		cond, args := b.rangeCond(qualify(b.tbl, b.keys), b.cursor, upper)
		return q.ExecContext(ctx, q.Rebind(`UPDATE `+b.tbl+` SET `+b.dstCol+` = (SELECT `+expr+` FROM `+b.ntbl+` n WHERE `+strings.Join(on, " AND ")+`) WHERE `+cond), args...)
	}
}

// readBatch reads up to size rows in (cursor, upper]: key values then the
// source value, locking them where the engine can. upper comes from probe,
// so the range holds about size rows and any plan reads only those.
func (b *bf) readBatch(ctx context.Context, q dialect.Querier, upper []any, size int) ([][]any, error) {
	cond, args := b.rangeCond(qualify("s", b.keys), b.cursor, upper)
	src := "s." + b.srcCol
	from := b.tbl + ` s`
	if b.m.CrossTable() && b.cfg.reverse {
		on := make([]string, len(b.keys))
		for i := range b.keys {
			on[i] = "n." + b.nkeys[i] + " = s." + b.keys[i]
		}
		from += ` LEFT JOIN ` + b.ntbl + ` n ON ` + strings.Join(on, " AND ")
		src = "n." + b.srcCol
	}
	lock := sqldialect.ForUpdate(b.d)
	if b.m.CrossTable() && b.cfg.reverse {
		lock = sqldialect.ForUpdateOf(b.d, "s")
	}
	query := `SELECT ` + strings.Join(qualify("s", b.keys), ", ") + `, ` + src + ` FROM ` + from + ` WHERE ` + cond +
		` ORDER BY ` + strings.Join(qualify("s", b.keys), ", ") + sqldialect.LimitSQL(size) + lock
	rows, err := q.QueryxContext(ctx, q.Rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]any
	for rows.Next() {
		vals, err := rows.SliceScan()
		if err != nil {
			return nil, err
		}
		for i := range vals {
			vals[i] = move.Normalize(vals[i])
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// applyGo reads a batch, transforms each row in Go and writes the results
// back in multi-row statements (a join with a list of rows), a few per
// batch rather than one per row: a round trip per row bounded the Go path
// at a few percent of the SQL path on the servers.
func (b *bf) applyGo(ctx context.Context, q *sqlx.Tx, size int) (upper []any, n int, failed int64, err error) {
	upper, n, err = b.probe(ctx, q, size)
	if err != nil || n == 0 {
		return nil, 0, 0, err
	}
	// A row a writer inserts or deletes in the range meanwhile may move
	// the batch's end: the last row read is the batch's upper key.
	rows, err := b.readBatch(ctx, q, upper, size)
	if err != nil || len(rows) == 0 {
		return nil, 0, 0, err
	}
	nk := len(b.keys)
	per := sqldialect.MaxRowsPerStatement(nk + 1)
	args := make([]any, 0, min(len(rows), per)*(nk+1))
	pending := 0
	flush := func() error {
		if pending == 0 {
			return nil
		}
		if _, err := q.ExecContext(ctx, q.Rebind(b.writeRowsSQL(pending)), args...); err != nil {
			return fmt.Errorf("write %d rows from %s: %w", pending, encodeKey(args[:nk]), err)
		}
		args, pending = args[:0], 0
		return nil
	}
	for _, r := range rows {
		key, v := r[:nk], r[nk]
		out, terr := b.transform.Apply(v)
		if terr != nil {
			if err := b.recordFailure(ctx, q, key, terr); err != nil {
				return nil, 0, 0, err
			}
			failed++
			continue
		}
		args = append(append(args, key...), out)
		if pending++; pending == per {
			if err := flush(); err != nil {
				return nil, 0, 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, 0, 0, err
	}
	return rows[len(rows)-1][:nk], len(rows), failed, nil
}

// writeRowsSQL writes n transformed rows, arguments keys then value per row.
func (b *bf) writeRowsSQL(n int) string {
	if b.m.CrossTable() && !b.cfg.reverse {
		return sqldialect.UpsertRowsSQL(b.d, b.ntbl, b.nkeys, b.dstCol, n)
	}
	return sqldialect.UpdateRowsSQL(b.d, b.tbl, b.keys, b.dstCol, n)
}

func (b *bf) writeSQL() string {
	if b.m.CrossTable() && !b.cfg.reverse {
		return sqldialect.UpsertSQL(b.d, b.ntbl, b.nkeys, b.dstCol)
	}
	return `UPDATE ` + b.tbl + ` SET ` + b.dstCol + ` = ? WHERE ` + eqAll(b.keys, "")
}

func (b *bf) writeArgs(key []any, v any) []any {
	if b.m.CrossTable() && !b.cfg.reverse {
		return append(append([]any{}, key...), v)
	}
	return append([]any{v}, key...)
}
