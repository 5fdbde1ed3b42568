package dualwrite

import (
	"context"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// Mismatch is a row where new differs from transform(old).
type Mismatch struct {
	Key  []any `json:"key"`
	Old  any   `json:"old"`
	New  any   `json:"new"`
	Want any   `json:"want"` // transform(old)
}

// VerifyResult is what Verify found.
type VerifyResult struct {
	Move       string        `json:"move"`
	Mode       string        `json:"mode"`
	Checked    int64         `json:"checked"`
	Mismatches int64         `json:"mismatches"`
	Listed     []Mismatch    `json:"listed,omitempty"`
	Failed     int64         `json:"failed"` // rows whose Go transform fails (recorded as failed rows), not counted as mismatches
	FailedRows []FailedRow   `json:"failed_rows,omitempty"`
	At         time.Time     `json:"at"`
	Elapsed    time.Duration `json:"elapsed_ns"`
}

type verifyConfig struct {
	list     int
	forceGo  bool
	progress func(Progress)
	batch    int
}

// Verify counts, and lists the first few of, the rows where new differs from
// Forward(old), NULL-safely, and records the count and the time in the
// ledger: read-new needs a verify after the backfill finished that found
// none. It only reads the moved table. With a SQL transform the database
// compares; with a Go function rows are read in keyset batches and compared
// in Go with SameValue (numbers by exact value: 12.5 and "12.50" agree,
// 2^53 and 2^53+1 do not), and a row whose transform fails is recorded in
// tandem_move_failures as the backfill records it, so it blocks read-new
// until a backfill with RetryFailed converts it. A SQL transform cannot
// report a row: MySQL and SQLite turn a bad value into 0 or NULL without an
// error (CAST('abc' AS SIGNED) is 0), so such an expression must guard
// itself (CASE WHEN ... THEN ... ELSE NULL END).
func (mg *Manager) Verify(ctx context.Context, name string, opts ...Option) (VerifyResult, error) {
	cfg, err := newVerifyConfig(opts)
	if err != nil {
		return VerifyResult{}, err
	}
	m, err := mg.Move(name)
	if err != nil {
		return VerifyResult{}, err
	}
	row, _, err := readLedger(ctx, mg.db, name)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("dualwrite: verify %s: %w", name, err)
	}
	if err := mg.refuse(ctx, mg.input(m, row, nil, mg.db), OpVerify); err != nil {
		return VerifyResult{}, err
	}
	// A verify beside a running backfill would compare rows it has not
	// reached yet; it takes the move's runner lock as a backfill does.
	lk, err := mg.takeRunner(ctx, name, "verify")
	if err != nil {
		return VerifyResult{}, err
	}
	defer lk.Release(ctx) //nolint:errcheck // the lock also ends with the process
	holder := mg.newRunner("verify")
	if _, err := mg.db.ExecContext(ctx, mg.db.Rebind(`UPDATE `+MovesTable+` SET lease_owner = ?, lease_until = NULL WHERE name = ?`), holder, name); err != nil {
		return VerifyResult{}, fmt.Errorf("dualwrite: verify %s: %w", name, err)
	}
	defer clearRunner(mg, name, holder)
	start := time.Now()
	res := VerifyResult{Move: name, Mode: "sql"}
	d := sqldialect.Of(mg.db)
	src := mg.verifySource(m)
	if cfg.forceGo && m.Forward.HasGo() || !m.Forward.HasSQL(d.Name()) {
		if err := mg.CheckTransform(name, false, cfg.forceGo); err != nil {
			return VerifyResult{}, err
		}
		res.Mode = "go"
		err = mg.verifyGo(ctx, m, src, cfg, &res)
	} else {
		err = mg.verifySQL(ctx, m, src, cfg, &res)
	}
	if err != nil {
		return res, fmt.Errorf("dualwrite: verify %s: %w", name, err)
	}
	if res.FailedRows, err = mg.FailedRows(ctx, name, max(cfg.list, 1)); err != nil {
		return res, fmt.Errorf("dualwrite: verify %s: %w", name, err)
	}
	if res.Mode == "sql" {
		res.Failed = row.FailedRows
	}
	res.At = mg.utc()
	res.Elapsed = time.Since(start)
	mg.log.Debug("dualwrite: verified", "move", name, "mode", res.Mode, "checked", res.Checked, "mismatches", res.Mismatches,
		"failed", res.Failed, "took", res.Elapsed)
	_, err = mg.db.ExecContext(ctx, mg.db.Rebind(`UPDATE `+MovesTable+` SET verified_at = ?, mismatches = ?, updated_at = ? WHERE name = ?`), res.At, res.Mismatches, res.At, name)
	if err != nil {
		return res, fmt.Errorf("dualwrite: verify %s: record: %w", name, err)
	}
	return res, nil
}

// verifySource is the FROM clause and column references of a verify.
type vsource struct {
	from      string
	keys      []string // qualified
	old, new_ string
}

func (mg *Manager) verifySource(m move.Move) vsource {
	d := sqldialect.Of(mg.db)
	keys, _ := quoteAll(d, m.Key)
	s := vsource{from: sqldialect.MustQuote(d, m.Table) + " s", keys: qualify("s", keys),
		old: "s." + sqldialect.MustQuote(d, m.Old)}
	if m.CrossTable() {
		nkeys, _ := quoteAll(d, m.New.Key)
		on := make([]string, len(keys))
		for i := range keys {
			on[i] = "n." + nkeys[i] + " = s." + keys[i]
		}
		s.from += " LEFT JOIN " + sqldialect.MustQuote(d, m.New.Table) + " n ON " + strings.Join(on, " AND ")
		s.new_ = "n." + sqldialect.MustQuote(d, m.New.Column)
	} else {
		s.new_ = "s." + sqldialect.MustQuote(d, m.New.Column)
	}
	return s
}

func (mg *Manager) verifySQL(ctx context.Context, m move.Move, s vsource, cfg verifyConfig, res *VerifyResult) error {
	d := sqldialect.Of(mg.db)
	want, err := m.Forward.Render(d.Name(), s.old)
	if err != nil {
		return err
	}
	differs := sqldialect.DistinctSQL(d, s.new_, want)
	q := mg.db
	if err := q.GetContext(ctx, &res.Checked, `SELECT COUNT(*) FROM `+s.from); err != nil {
		return err
	}
	if err := q.GetContext(ctx, &res.Mismatches, `SELECT COUNT(*) FROM `+s.from+` WHERE `+differs); err != nil {
		return err
	}
	if res.Mismatches == 0 || cfg.list <= 0 {
		return nil
	}
	rows, err := q.QueryxContext(ctx, `SELECT `+strings.Join(s.keys, ", ")+`, `+s.old+`, `+s.new_+`, `+want+` FROM `+s.from+` WHERE `+differs+` ORDER BY `+strings.Join(s.keys, ", ")+sqldialect.LimitSQL(cfg.list))
	if err != nil {
		return err
	}
	defer rows.Close()
	nk := len(s.keys)
	for rows.Next() {
		vals, err := rows.SliceScan()
		if err != nil {
			return err
		}
		for i := range vals {
			vals[i] = move.Normalize(vals[i])
		}
		res.Listed = append(res.Listed, Mismatch{Key: vals[:nk], Old: vals[nk], New: vals[nk+1], Want: vals[nk+2]})
	}
	return rows.Err()
}

func (mg *Manager) verifyGo(ctx context.Context, m move.Move, s vsource, cfg verifyConfig, res *VerifyResult) error {
	d := sqldialect.Of(mg.db)
	nk := len(s.keys)
	var cursor []any
	start := time.Now()
	batch := 0
	var failed []failure
	for {
		var cond string
		var args []any
		if cursor != nil {
			c, idx := sqldialect.KeyAfter(d, s.keys)
			cond, args = " WHERE "+c, pick(cursor, idx)
		}
		rows, err := mg.db.QueryxContext(ctx, mg.db.Rebind(`SELECT `+strings.Join(s.keys, ", ")+`, `+s.old+`, `+s.new_+` FROM `+s.from+cond+` ORDER BY `+strings.Join(s.keys, ", ")+sqldialect.LimitSQL(cfg.batch)), args...)
		if err != nil {
			return err
		}
		n := 0
		for rows.Next() {
			vals, err := rows.SliceScan()
			if err != nil {
				rows.Close()
				return err
			}
			for i := range vals {
				vals[i] = move.Normalize(vals[i])
			}
			n++
			cursor = vals[:nk]
			res.Checked++
			want, terr := m.Forward.Apply(vals[nk])
			if terr != nil {
				res.Failed++
				failed = append(failed, failure{key: vals[:nk], err: terr})
				continue
			}
			if !SameValue(vals[nk+1], want) {
				res.Mismatches++
				if len(res.Listed) < cfg.list {
					res.Listed = append(res.Listed, Mismatch{Key: vals[:nk], Old: vals[nk], New: vals[nk+1], Want: want})
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// Recorded like the backfill's failures, after the batch's cursor
		// is closed: they block read-new until a retry converts them.
		for _, f := range failed {
			if err := recordFailure(ctx, mg.db, m.Name, f.key, f.err, mg.utc()); err != nil {
				return fmt.Errorf("record failed row: %w", err)
			}
		}
		failed = failed[:0]
		batch++
		mg.log.Debug("dualwrite: verify batch done", "move", m.Name, "batch", batch, "rows", n, "checked", res.Checked,
			"mismatches", res.Mismatches, "failed", res.Failed)
		if cfg.progress != nil {
			cfg.progress(Progress{Move: m.Name, Op: "verify", Mode: "go", Batch: batch, BatchRows: n, Done: res.Checked, Elapsed: time.Since(start), Finished: n < cfg.batch})
		}
		if n < cfg.batch {
			return nil
		}
	}
}

// SameValue compares two column values as tandem's verify does: NULL only
// equals NULL; times compare by instant; two strings compare as text,
// exactly (no trimming, no numeric reading: "007" is not "7"). Numbers
// compare by exact value whatever their Go type: integers exactly (no
// float64 rounding past 2^53), an integer and a float by the float's exact
// value, two floats with ==. A string is read as a number only when the
// other side is a number that is not a string, since drivers return
// DECIMAL columns as text: against an integer it must be the same decimal
// exactly ("12.50" equals 12.5 and "7.0" equals 7), against a float it is
// read as the nearest float64. A bool equals a bool, or an integer 0 or 1
// (engines store booleans as integers), never a string. Anything else
// compares by its fmt text.
func SameValue(a, b any) bool {
	a, b = move.Normalize(a), move.Normalize(b)
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if ta, ok := a.(time.Time); ok {
		if tb, ok := b.(time.Time); ok {
			return ta.Equal(tb)
		}
	}
	sa, aStr := a.(string)
	sb, bStr := b.(string)
	if aStr && bStr {
		return sa == sb
	}
	ba, aBool := a.(bool)
	bb, bBool := b.(bool)
	switch {
	case aBool && bBool:
		return ba == bb
	case aBool || bBool:
		x, other := ba, b
		if bBool {
			x, other = bb, a
		}
		n, ok := intValue(other)
		return ok && n.IsInt64() && n.Int64() == map[bool]int64{false: 0, true: 1}[x]
	}
	na, aNum := numValue(a)
	nb, bNum := numValue(b)
	switch {
	case aNum && bNum:
		return na.equal(nb)
	case aNum && bStr:
		return na.equalText(sb)
	case bNum && aStr:
		return nb.equalText(sa)
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// num is a number that is not text: an exact integer or a float64.
type num struct {
	i       *big.Int // set for integers
	f       float64
	isFloat bool
}

func intValue(v any) (*big.Int, bool) {
	switch x := v.(type) {
	case int:
		return big.NewInt(int64(x)), true
	case int8:
		return big.NewInt(int64(x)), true
	case int16:
		return big.NewInt(int64(x)), true
	case int32:
		return big.NewInt(int64(x)), true
	case int64:
		return big.NewInt(x), true
	case uint:
		return new(big.Int).SetUint64(uint64(x)), true
	case uint8:
		return big.NewInt(int64(x)), true
	case uint16:
		return big.NewInt(int64(x)), true
	case uint32:
		return big.NewInt(int64(x)), true
	case uint64:
		return new(big.Int).SetUint64(x), true
	}
	return nil, false
}

func numValue(v any) (num, bool) {
	if i, ok := intValue(v); ok {
		return num{i: i}, true
	}
	switch x := v.(type) {
	case float64:
		return num{f: x, isFloat: true}, true
	case float32:
		return num{f: float64(x), isFloat: true}, true
	}
	return num{}, false
}

// rat is the exact value of n; ok is false for NaN and infinities.
func (n num) rat() (*big.Rat, bool) {
	if !n.isFloat {
		return new(big.Rat).SetInt(n.i), true
	}
	if math.IsNaN(n.f) || math.IsInf(n.f, 0) {
		return nil, false
	}
	return new(big.Rat).SetFloat64(n.f), true
}

func (n num) equal(o num) bool {
	if n.isFloat && o.isFloat {
		return n.f == o.f
	}
	if !n.isFloat && !o.isFloat {
		return n.i.Cmp(o.i) == 0
	}
	a, ok1 := n.rat()
	b, ok2 := o.rat()
	return ok1 && ok2 && a.Cmp(b) == 0
}

// equalText compares n with a decimal as a driver returns it.
func (n num) equalText(s string) bool {
	if !isDecimal(s) {
		return false
	}
	if n.isFloat {
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && f == n.f
	}
	r, ok := new(big.Rat).SetString(s)
	return ok && r.Cmp(new(big.Rat).SetInt(n.i)) == 0
}

// isDecimal accepts what engines print for a number: an optional minus,
// digits without a leading zero, an optional fraction and exponent. No
// spaces, no plus sign, no fractions like "1/2".
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	start := i
	if n := digits(); n == 0 || n > 1 && s[start] == '0' {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}
