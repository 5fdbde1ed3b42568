package dualwrite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// Progress is one event of a backfill or verify run, sent after every batch
// and once at the end (Finished). The CLI draws it as a bar on a terminal,
// as lines otherwise, and as JSON with --json.
type Progress struct {
	Move      string        `json:"move"`
	Op        string        `json:"op"`   // "backfill", "reverse-backfill" or "verify"
	Mode      string        `json:"mode"` // "sql" (one UPDATE per batch) or "go"
	Batch     int           `json:"batch"`
	BatchRows int           `json:"batch_rows"`
	BatchSize int           `json:"batch_size"`
	BatchTime time.Duration `json:"batch_time_ns"`
	Done      int64         `json:"done"`
	Total     int64         `json:"total"`
	Failed    int64         `json:"failed"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	RowsPerS  float64       `json:"rows_per_s"`
	Finished  bool          `json:"finished"`
}

// Percent is Done over Total, 0 to 100.
func (p Progress) Percent() float64 {
	if p.Total <= 0 {
		if p.Finished {
			return 100
		}
		return 0
	}
	return min(100, 100*float64(p.Done)/float64(p.Total))
}

type backfillConfig struct {
	target      time.Duration
	initial     int
	minBatch    int
	maxBatch    int
	rate        float64
	progress    func(Progress)
	reverse     bool
	restart     bool
	retryFailed bool
	forceGo     bool
	lease       time.Duration
}

// BackfillOption configures Backfill.
type BackfillOption func(*backfillConfig)

// TargetBatchTime is the time one batch should take (default 50ms); the
// batch size adapts toward it, like pt-online-schema-change's --chunk-time.
// The default leaves room for a batch to take four times as long as
// planned, on a busy machine, and still hold locks under 200ms, while a
// batch's fixed cost (its transaction, the cursor) stays a few percent.
func TargetBatchTime(d time.Duration) BackfillOption {
	return func(c *backfillConfig) { c.target = d }
}

// BatchSize sets the first batch's size (default 1000) and the bounds the
// adaptive size stays within (defaults 100 and 1,000,000); zero keeps a
// default. The target time, not the maximum, normally decides the size.
func BatchSize(initial, minRows, maxRows int) BackfillOption {
	return func(c *backfillConfig) {
		if initial > 0 {
			c.initial = initial
		}
		if minRows > 0 {
			c.minBatch = minRows
		}
		if maxRows > 0 {
			c.maxBatch = maxRows
		}
	}
}

// RateLimit caps the backfill at rows per second (0: no limit).
func RateLimit(rowsPerSecond float64) BackfillOption {
	return func(c *backfillConfig) { c.rate = rowsPerSecond }
}

// OnProgress is called after every batch and once at the end.
func OnProgress(f func(Progress)) BackfillOption { return func(c *backfillConfig) { c.progress = f } }

// Reverse refreshes old from new (old = Backward(new)) instead: the way
// back from write-new when no reverse trigger kept old.
func Reverse() BackfillOption { return func(c *backfillConfig) { c.reverse = true } }

// Restart discards the saved cursor and starts from the first key.
func Restart() BackfillOption { return func(c *backfillConfig) { c.restart = true } }

// RetryFailed transforms again the rows recorded as failed, and forgets
// those that succeed.
func RetryFailed() BackfillOption { return func(c *backfillConfig) { c.retryFailed = true } }

// UseGo runs the Go transform even when a SQL expression exists.
func UseGo() BackfillOption { return func(c *backfillConfig) { c.forceGo = true } }

// BackfillResult sums up one Backfill call.
type BackfillResult struct {
	Move      string        `json:"move"`
	Op        string        `json:"op"`
	Mode      string        `json:"mode"`
	Rows      int64         `json:"rows"` // rows this run went through
	Done      int64         `json:"done"` // rows done over every run
	Total     int64         `json:"total"`
	Failed    int64         `json:"failed"`
	Batches   int           `json:"batches"`
	Elapsed   time.Duration `json:"elapsed_ns"`
	RowsPerS  float64       `json:"rows_per_s"`
	P50Batch  time.Duration `json:"p50_batch_ns"`
	P99Batch  time.Duration `json:"p99_batch_ns"`
	MaxBatch  time.Duration `json:"max_batch_ns"`
	Resumed   bool          `json:"resumed"`  // continued from a saved cursor
	Complete  bool          `json:"complete"` // every row up to the bound is done
	LastBatch int           `json:"last_batch_size"`
}

// bf is one running backfill.
type bf struct {
	mg     *Manager
	m      move.Move
	d      dialect.Dialect
	cfg    backfillConfig
	prefix string // ledger column prefix
	mode   string
	// quoted names; src is the column read, dst the column written.
	tbl, ntbl  string
	keys       []string
	nkeys      []string
	srcCol     string
	dstCol     string
	transform  move.Transform
	sqlExpr    string // rendered transform over the source column, "" in Go mode
	direction  string
	cursor     []any
	bound      []any
	batchTimes []time.Duration
	// dense: the key is one integer column whose values are mostly
	// consecutive, so a batch is a range of key values and needs no probe
	// for its upper key. lower is the exclusive lower end of the next one.
	dense bool
	lower int64
	// conn is the run's own connection, set up by dialect.BulkSession.
	conn *sqlx.Conn
}

// Backfill fills new from old (or, with Reverse, old from new) for rows
// that existed when the backfill started, in keyset batches of adaptive
// size, each in its own transaction that also saves the cursor. A run
// killed at any point resumes from the last committed batch.
//
// The run is bounded by the highest key present when it first started:
// rows inserted later are written by instances acting on write-both or by
// triggers, so the backfill ends even while inserts keep arriving (the
// failure pgroll's issue #583 describes). For that reason it starts only
// when every instance writes both (or triggers are installed).
//
// With a SQL expression each batch is one UPDATE (or, across tables, one
// INSERT ... SELECT) over the key range; with a Go function each batch reads,
// transforms and writes its rows (in multi-row statements), and a row whose
// transform fails is recorded (key and error) in tandem_move_failures and
// blocks read-new.
//
// The batches run on a connection of their own, set up for many short
// transactions (dialect.BulkSession): on PostgreSQL their commits do not
// wait for the WAL flush, so a server crash can lose the last batches and
// their cursors together, and a rerun redoes them; the batch that records
// completion commits durably.
func (mg *Manager) Backfill(ctx context.Context, name string, opts ...BackfillOption) (BackfillResult, error) {
	cfg := backfillConfig{target: 50 * time.Millisecond, initial: 1000, minBatch: 100, maxBatch: 1_000_000, lease: time.Minute}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := mg.Move(name)
	if err != nil {
		return BackfillResult{}, err
	}
	b := &bf{mg: mg, m: m, d: mg.db.Dialect, cfg: cfg}
	b.setup()
	res := BackfillResult{Move: name, Op: b.direction, Mode: b.mode}
	if err := b.claim(ctx, &res); err != nil {
		return res, err
	}
	defer b.release()
	if cfg.retryFailed && !cfg.reverse {
		if err := b.retryFailed(ctx, &res); err != nil {
			return res, err
		}
	}
	if res.Complete {
		return res, nil
	}
	err = b.run(ctx, &res)
	if err != nil {
		return res, fmt.Errorf("dualwrite: backfill %s: %w", name, err)
	}
	return res, nil
}

func (b *bf) setup() {
	d, m := b.d, b.m
	b.tbl = dialect.MustQuote(d, m.Table)
	b.ntbl = dialect.MustQuote(d, m.NewTable())
	b.keys, _ = quoteAll(d, m.Key)
	b.nkeys, _ = quoteAll(d, m.NewKey())
	oldc, newc := dialect.MustQuote(d, m.Old), dialect.MustQuote(d, m.New.Column)
	b.prefix, b.direction = "backfill", "backfill"
	b.srcCol, b.dstCol, b.transform = oldc, newc, m.Forward
	if b.cfg.reverse {
		b.prefix, b.direction = "reverse", "reverse-backfill"
		b.srcCol, b.dstCol, b.transform = newc, oldc, m.Backward
	}
	b.mode = "go"
	if !b.cfg.forceGo || !b.transform.HasGo() {
		if b.transform.HasSQL(d.Name()) {
			b.mode = "sql"
		}
	}
}

// claim checks that the backfill may run, takes the move's lease and, on a
// first run or a restart, fixes the bound and the total.
func (b *bf) claim(ctx context.Context, res *BackfillResult) error {
	mg, m := b.mg, b.m
	return mg.db.Dialect.Locked(ctx, mg.db.DB, "move:"+m.Name, mg.lockWait, func(ctx context.Context, q dialect.Querier) error {
		// The registry is read under the move's lock, as Advance reads it,
		// so no transition slips between what was checked and the claim.
		snap, err := mg.snapshot(ctx)
		if err != nil {
			return fmt.Errorf("dualwrite: backfill %s: %w", m.Name, err)
		}
		row, _, err := readLedger(ctx, q, m.Name)
		if err != nil {
			return err
		}
		g := Gate{Move: m.Name, Op: b.direction, From: row.phase, To: row.phase}
		block := func(b Blocker) error {
			g.Blockers = append(g.Blockers, b)
			return &GateError{Gate: g}
		}
		if b.cfg.reverse {
			if row.phase != move.ReadNew || row.OldStale == 0 {
				return block(Blocker{Kind: BlockStaleOld, Message: fmt.Sprintf("a reverse backfill refreshes old after a rollback from write-new to read-new; the move is at %s and old is %s", row.phase, map[bool]string{true: "stale", false: "not stale"}[row.OldStale != 0])})
			}
			if snap == nil {
				return block(Blocker{Kind: BlockRegistry, Message: "no registry configured: cannot check that nobody writes new only any more"})
			}
			if lag := ackedAll(snap, m, func(p move.Phase) bool { return p <= move.ReadNew }); len(lag) > 0 {
				return block(Blocker{Kind: BlockInstances, Instances: lag, Message: fmt.Sprintf("%d instance(s) still write new only (%s): wait until they act on read-new", len(lag), lag[0])})
			}
		} else {
			if row.phase != move.WriteBoth && row.phase != move.ReadNew {
				return block(Blocker{Kind: BlockBackfill, Message: fmt.Sprintf("the backfill runs in write-both (or read-new, to retry); the move is at %s", row.phase)})
			}
			if m.Triggers {
				in := mg.input(m, row, snap, q)
				set, err := in.trigSets()
				if err != nil {
					return err
				}
				if err := checkTriggers(ctx, q, set); err != nil {
					return block(Blocker{Kind: BlockTriggers, Message: "sync triggers are not as generated: " + err.Error()})
				}
			} else if snap == nil {
				return block(Blocker{Kind: BlockRegistry, Message: "no registry configured: cannot check that every instance writes both"})
			} else if lag := ackedAll(snap, m, func(p move.Phase) bool { return p >= move.WriteBoth }); len(lag) > 0 {
				// Rows a legacy writer changes after the backfill passed
				// them would keep a stale new: wait for everyone.
				return block(Blocker{Kind: BlockInstances, Instances: lag, Message: fmt.Sprintf("%d instance(s) do not write both yet (%s): the backfill starts when every instance acts on write-both", len(lag), lag[0])})
			}
		}
		now := mg.utc()
		if row.LeaseOwner.Valid && row.LeaseOwner.String != mg.owner && row.LeaseUntil.Valid && row.LeaseUntil.Time.After(now) {
			return &BusyError{Move: m.Name, Owner: row.LeaseOwner.String, Until: row.LeaseUntil.Time.UTC().Format(time.RFC3339)}
		}
		p := row.Forward
		if b.cfg.reverse {
			p = row.Reverse
		}
		sets := []string{"lease_owner = ?", "lease_until = ?"}
		args := []any{mg.owner, now.Add(b.cfg.lease)}
		if !p.StartedAt.Valid || b.cfg.restart {
			bound, err := b.maxKey(ctx, q)
			if err != nil {
				return err
			}
			var total int64
			var boundText any
			if bound != nil {
				boundText = encodeKey(bound)
				cond, idx := dialect.KeyAtMost(b.d, b.keys)
				count, args := `SELECT COUNT(*) FROM `+b.tbl+` WHERE `+cond, pick(bound, idx)
				if b.d.Name() == dialect.SQLite {
					// SQLite's lock is a write transaction: no row can
					// arrive after the bound was read, so every row is
					// at most the bound, and a bare COUNT(*) counts the
					// table's pages without decoding rows, three times
					// faster (a tenth of a fast backfill's time).
					count, args = `SELECT COUNT(*) FROM `+b.tbl, nil
				}
				if err := q.GetContext(ctx, &total, q.Rebind(count), args...); err != nil {
					return err
				}
			}
			pre := b.prefix
			sets = append(sets, pre+"_cursor = NULL", pre+"_bound = ?", pre+"_started_at = ?", pre+"_done_at = ?", pre+"_rows_done = 0", pre+"_rows_total = ?")
			var doneAt any
			if bound == nil {
				doneAt = now // an empty table is backfilled
			}
			args = append(args, boundText, now, doneAt, total)
			if !b.cfg.reverse {
				sets = append(sets, "failed_rows = 0", "verified_at = NULL", "mismatches = NULL")
				if _, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM `+FailuresTable+` WHERE move = ?`), m.Name); err != nil {
					return err
				}
			}
			p = progress{StartedAt: sql.NullTime{Time: now, Valid: true}, RowsTotal: total, Bound: sql.NullString{String: fmt.Sprint(boundText), Valid: bound != nil}}
			if bound == nil {
				p.DoneAt = sql.NullTime{Time: now, Valid: true}
			}
		} else {
			res.Resumed = p.Cursor.Valid
		}
		if _, err := q.ExecContext(ctx, q.Rebind(`UPDATE `+MovesTable+` SET `+strings.Join(sets, ", ")+` WHERE name = ?`), append(args, m.Name)...); err != nil {
			return err
		}
		res.Done, res.Total, res.Failed = p.RowsDone, p.RowsTotal, row.FailedRows
		if b.cfg.restart {
			res.Failed = 0
		}
		if p.DoneAt.Valid {
			res.Complete = true
			if b.cfg.reverse {
				_, err := q.ExecContext(ctx, q.Rebind(`UPDATE `+MovesTable+` SET old_stale = 0 WHERE name = ?`), m.Name)
				return err
			}
			return nil
		}
		if p.Bound.Valid {
			if b.bound, err = decodeKey(p.Bound.String); err != nil {
				return err
			}
		}
		if p.Cursor.Valid {
			if b.cursor, err = decodeKey(p.Cursor.String); err != nil {
				return err
			}
		}
		return nil
	})
}

func checkTriggers(ctx context.Context, q dialect.Querier, set triggers.Set) error {
	_, err := triggers.Check(ctx, q, set)
	return err
}

// release gives the lease back so another runner need not wait for it.
func (b *bf) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = b.mg.db.ExecContext(ctx, b.mg.db.Rebind(`UPDATE `+MovesTable+` SET lease_owner = NULL, lease_until = NULL WHERE name = ? AND lease_owner = ?`), b.m.Name, b.mg.owner)
}

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
	rows, err := q.QueryxContext(ctx, `SELECT `+strings.Join(b.keys, ", ")+` FROM `+b.tbl+` ORDER BY `+strings.Join(desc, ", ")+dialect.LimitSQL(1))
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
		c, idx := dialect.KeyAfter(b.d, keys)
		conds, args = append(conds, c), append(args, pick(cursor, idx)...)
	}
	c, idx := dialect.KeyAtMost(b.d, keys)
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

func (b *bf) run(ctx context.Context, res *BackfillResult) (err error) {
	start := time.Now()
	conn, err := b.mg.db.Connx(ctx)
	if err != nil {
		return err
	}
	undo, err := dialect.BulkSession(ctx, conn, b.d)
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("set up the backfill's connection: %w", err)
	}
	b.conn = conn
	defer func() {
		// Undo even when ctx is done: the connection goes back to the pool.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if uerr := undo(uctx); uerr != nil {
			// Never hand anyone a connection with the run's settings.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			if err == nil {
				err = fmt.Errorf("restore the backfill's connection: %w", uerr)
			}
		}
		_ = conn.Close()
	}()
	sz := &batchSizer{target: b.cfg.target, minRows: b.cfg.minBatch, maxRows: b.cfg.maxBatch}
	size := max(b.cfg.minBatch, min(b.cfg.maxBatch, b.cfg.initial))
	var ranRows int64
	if err := b.detectDense(ctx, res); err != nil {
		return err
	}
	emit := func(p Progress) {
		if b.cfg.progress != nil {
			b.cfg.progress(p)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		n, full, done, err := b.batch(ctx, size, res)
		if err != nil {
			return err
		}
		el := time.Since(t0)
		if n > 0 || b.dense {
			b.batchTimes = append(b.batchTimes, el)
			res.Batches++
			ranRows += int64(n)
			res.Rows = ranRows
			res.Done += int64(n)
			res.LastBatch = size
			emit(Progress{Move: b.m.Name, Op: b.direction, Mode: b.mode, Batch: res.Batches, BatchRows: n, BatchSize: size,
				BatchTime: el, Done: res.Done, Total: res.Total, Failed: res.Failed, Elapsed: time.Since(start),
				RowsPerS: float64(ranRows) / time.Since(start).Seconds()})
			if full {
				size = sz.observe(size, el)
			}
		}
		if done {
			break
		}
		if b.cfg.rate > 0 {
			want := time.Duration(float64(ranRows) / b.cfg.rate * float64(time.Second))
			if wait := want - time.Since(start); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
		}
	}
	res.Complete = true
	res.Elapsed = time.Since(start)
	if res.Elapsed > 0 {
		res.RowsPerS = float64(ranRows) / res.Elapsed.Seconds()
	}
	res.P50Batch, res.P99Batch, res.MaxBatch = percentiles(b.batchTimes)
	emit(Progress{Move: b.m.Name, Op: b.direction, Mode: b.mode, Batch: res.Batches, Done: res.Done, Total: res.Total,
		Failed: res.Failed, Elapsed: res.Elapsed, RowsPerS: res.RowsPerS, Finished: true})
	return nil
}

// batchSizer adapts the rows per batch toward a target time per batch,
// like pt-online-schema-change's --chunk-time. It keeps a smoothed cost per
// row and sizes the next batch to take the target time at that cost.
//
// A batch over one and a half times the target is believed at once, so a
// stall (a checkpoint, a burst of other load) shrinks the next batch in
// proportion and does not repeat itself at full size; any other batch is
// averaged in, so neither one quick batch makes the next one long nor does
// ordinary jitter keep batches below the target, where each batch's fixed
// cost (its commit, the cursor) would weigh more. Growth is at most twice per batch, eight
// times while batches take under an eighth of the target: the first batch
// is small because nothing is known yet, and a backfill of a fast engine
// would otherwise spend much of its run ramping up. A short last batch says
// nothing about the rate and is not observed.
type batchSizer struct {
	target           time.Duration
	minRows, maxRows int
	perRow           float64 // seconds per row; 0 until the first batch
}

// observe records that a batch of rows took el and returns the next size.
func (s *batchSizer) observe(rows int, el time.Duration) int {
	if rows <= 0 || el <= 0 {
		return max(s.minRows, min(s.maxRows, rows))
	}
	r := el.Seconds() / float64(rows)
	switch {
	case s.perRow == 0, el > s.target*3/2 && r > s.perRow:
		s.perRow = r
	default:
		s.perRow = (s.perRow + r) / 2
	}
	growth := 2.0
	if el < s.target/8 {
		growth = 8
	}
	next := min(s.target.Seconds()/s.perRow, float64(rows)*growth)
	return max(s.minRows, min(s.maxRows, int(next)))
}

func percentiles(ts []time.Duration) (p50, p99, mx time.Duration) {
	if len(ts) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(len(s)-1, i))]
	}
	return at(0.50), at(0.99), s[len(s)-1]
}

// batch does one batch in its own transaction: it finds the batch's upper
// key, moves the rows in (cursor, upper], and saves upper as the cursor.
func (b *bf) batch(ctx context.Context, size int, res *BackfillResult) (n int, full, done bool, err error) {
	if b.bound == nil {
		return 0, false, true, b.finish(ctx)
	}
	tx, err := b.conn.BeginTxx(ctx, nil)
	if err != nil {
		return 0, false, false, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var upper []any
	var failed int64
	switch {
	case b.dense:
		hi := min(b.lower+int64(size), b.bound[0].(int64))
		upper = []any{hi}
		var affected int64
		affected, err = b.applySQL(ctx, tx, upper)
		n, full = int(affected), hi-b.lower == int64(size)
	case b.mode == "sql":
		upper, n, err = b.probe(ctx, tx, size)
		if err == nil && n > 0 {
			_, err = b.applySQL(ctx, tx, upper)
		}
		full = n == size
	default:
		upper, n, failed, err = b.applyGo(ctx, tx, size)
		full = n == size
	}
	if err != nil {
		return 0, false, false, err
	}
	if n == 0 && !b.dense {
		if err := tx.Rollback(); err != nil {
			return 0, false, false, err
		}
		return 0, false, true, b.finish(ctx)
	}
	now := b.mg.utc()
	pre := b.prefix
	sets := pre + "_cursor = ?, " + pre + "_rows_done = " + pre + "_rows_done + ?, lease_until = ?, updated_at = ?"
	args := []any{encodeKey(upper), n, now.Add(b.cfg.lease), now}
	last := keyEqual(upper, b.bound)
	if last {
		// The last batch records completion in its own transaction. A row
		// a writer committed below the bound after the total was counted
		// is done too: the total never ends below what was done.
		sets += ", " + pre + "_done_at = ?, " + pre + "_rows_total = CASE WHEN " + pre + "_rows_total < " + pre + "_rows_done + ? THEN " + pre + "_rows_done + ? ELSE " + pre + "_rows_total END"
		args = append(args, now, n, n)
		res.Total = max(res.Total, res.Done+int64(n))
		if b.cfg.reverse {
			sets += ", old_stale = 0"
		}
	}
	if failed != 0 {
		sets += ", failed_rows = failed_rows + ?"
		args = append(args, failed)
		res.Failed += failed
	}
	r, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE `+MovesTable+` SET `+sets+` WHERE name = ? AND lease_owner = ?`), append(args, b.m.Name, b.mg.owner)...)
	if err != nil {
		return 0, false, false, err
	}
	if c, _ := r.RowsAffected(); c == 0 {
		return 0, false, false, &BusyError{Move: b.m.Name, Owner: "another runner", Until: "now (this run lost its lease)"}
	}
	if q := dialect.DurableCommitSQL(b.d); last && q != "" {
		// Completion is durable when Backfill returns, and with it every
		// batch before it.
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return 0, false, false, err
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, false, err
	}
	b.cursor = upper
	if b.dense {
		b.lower = upper[0].(int64)
	}
	return n, full, last, nil
}

// detectDense decides whether batches can be ranges of key values: one
// integer key column, SQL mode, and at least one row per two key values in
// what is left. It saves the probe query of each batch, which costs a fifth
// of the update itself on SQLite and on InnoDB (whose probe reads the
// clustered index). A batch's row count is then the engine's affected-row
// count: exact on SQLite and PostgreSQL; on MySQL/MariaDB the rows changed,
// so rows already holding the right value are not counted and progress can
// end short of 100% on a rerun. Completion is recorded either way.
func (b *bf) detectDense(ctx context.Context, res *BackfillResult) error {
	if b.mode != "sql" || len(b.keys) != 1 || b.bound == nil {
		return nil
	}
	hi, ok := b.bound[0].(int64)
	if !ok {
		return nil
	}
	var lo int64
	if b.cursor != nil {
		c, ok := b.cursor[0].(int64)
		if !ok {
			return nil
		}
		lo = c
	} else {
		var mn sql.NullInt64
		if err := b.mg.db.GetContext(ctx, &mn, `SELECT MIN(`+b.keys[0]+`) FROM `+b.tbl); err != nil {
			return err
		}
		if !mn.Valid {
			return nil
		}
		lo = mn.Int64 - 1
	}
	left := res.Total - res.Done
	if span := hi - lo; span > 0 && left*2 >= span {
		b.dense, b.lower = true, lo
	}
	return nil
}

func keyEqual(a, b []any) bool {
	return encodeKey(a) == encodeKey(b)
}

// finish records the backfill complete.
func (b *bf) finish(ctx context.Context) error {
	now := b.mg.utc()
	extra := ""
	if b.cfg.reverse {
		extra = ", old_stale = 0"
	}
	_, err := b.mg.db.ExecContext(ctx, b.mg.db.Rebind(`UPDATE `+MovesTable+` SET `+b.prefix+`_done_at = ?, updated_at = ?`+extra+` WHERE name = ? AND lease_owner = ?`), now, now, b.m.Name, b.mg.owner)
	return err
}

// probe finds the upper key of the next batch and how many rows it holds.
func (b *bf) probe(ctx context.Context, q dialect.Querier, size int) ([]any, int, error) {
	cond, args := b.rangeCond(b.keys, b.cursor, b.bound)
	inner := `SELECT ` + strings.Join(b.keys, ", ") + ` FROM ` + b.tbl + ` WHERE ` + cond + ` ORDER BY ` + strings.Join(b.keys, ", ") + dialect.LimitSQL(size)
	if len(b.keys) == 1 {
		var cnt int
		var mx any
		if err := q.QueryRowxContext(ctx, q.Rebind(`SELECT COUNT(*), MAX(`+b.keys[0]+`) FROM (`+inner+`) s`), args...).Scan(&cnt, &mx); err != nil {
			return nil, 0, err
		}
		if cnt == 0 {
			return nil, 0, nil
		}
		return []any{move.Normalize(mx)}, cnt, nil
	}
	rows, err := q.QueryxContext(ctx, q.Rebind(inner), args...)
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
		if b.d.Name() == dialect.Postgres {
			// Lock the source rows first: a writer changing old between
			// this statement's snapshot and its upsert would otherwise
			// be overwritten with a stale value. MySQL's INSERT ... SELECT
			// locks what it reads; SQLite has one writer.
			if _, err := q.ExecContext(ctx, q.Rebind(`SELECT 1 FROM `+b.tbl+` s WHERE `+cond+` FOR UPDATE`), args...); err != nil {
				return nil, err
			}
		}
		sel := `SELECT ` + strings.Join(qualify("s", b.keys), ", ") + `, ` + expr + ` FROM ` + b.tbl + ` s WHERE ` + cond
		return q.ExecContext(ctx, q.Rebind(dialect.UpsertSelectSQL(b.d, b.ntbl, b.nkeys, b.dstCol, sel)), args...)
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

// readBatch reads up to size rows after the cursor: key values then the
// source value, locking them where the engine can.
func (b *bf) readBatch(ctx context.Context, q dialect.Querier, size int) ([][]any, error) {
	cond, args := b.rangeCond(qualify("s", b.keys), b.cursor, b.bound)
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
	lock := dialect.ForUpdate(b.d)
	if lock != "" && b.m.CrossTable() && b.cfg.reverse {
		lock += " OF s"
		if b.d.Name() == dialect.MySQL {
			lock = " FOR UPDATE"
		}
	}
	query := `SELECT ` + strings.Join(qualify("s", b.keys), ", ") + `, ` + src + ` FROM ` + from + ` WHERE ` + cond +
		` ORDER BY ` + strings.Join(qualify("s", b.keys), ", ") + dialect.LimitSQL(size) + lock
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
	rows, err := b.readBatch(ctx, q, size)
	if err != nil || len(rows) == 0 {
		return nil, 0, 0, err
	}
	nk := len(b.keys)
	per := dialect.MaxRowsPerStatement(nk + 1)
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
		return dialect.UpsertRowsSQL(b.d, b.ntbl, b.nkeys, b.dstCol, n)
	}
	return dialect.UpdateRowsSQL(b.d, b.tbl, b.keys, b.dstCol, n)
}

func (b *bf) writeSQL() string {
	if b.m.CrossTable() && !b.cfg.reverse {
		return dialect.UpsertSQL(b.d, b.ntbl, b.nkeys, b.dstCol)
	}
	return `UPDATE ` + b.tbl + ` SET ` + b.dstCol + ` = ? WHERE ` + eqAll(b.keys, "")
}

func (b *bf) writeArgs(key []any, v any) []any {
	if b.m.CrossTable() && !b.cfg.reverse {
		return append(append([]any{}, key...), v)
	}
	return append([]any{v}, key...)
}

func (b *bf) recordFailure(ctx context.Context, q dialect.Querier, key []any, terr error) error {
	k := encodeKey(key)
	if _, err := q.ExecContext(ctx, q.Rebind(`DELETE FROM `+FailuresTable+` WHERE move = ? AND row_key = ?`), b.m.Name, k); err != nil {
		return err
	}
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+FailuresTable+` (move, row_key, error, failed_at) VALUES (?, ?, ?, ?)`), b.m.Name, k, terr.Error(), b.mg.utc())
	return err
}

// retryFailed transforms the recorded failed rows again.
func (b *bf) retryFailed(ctx context.Context, res *BackfillResult) error {
	if !b.transform.HasGo() {
		return nil
	}
	var keys []string
	if err := b.mg.db.SelectContext(ctx, &keys, b.mg.db.Rebind(`SELECT row_key FROM `+FailuresTable+` WHERE move = ? ORDER BY row_key`), b.m.Name); err != nil {
		return err
	}
	for _, k := range keys {
		key, err := decodeKey(k)
		if err != nil {
			return err
		}
		err = b.withTx(ctx, func(tx *sqlx.Tx) error {
			var v any
			if err := tx.QueryRowxContext(ctx, tx.Rebind(`SELECT `+b.srcCol+` FROM `+b.tbl+` WHERE `+eqAll(b.keys, "")+dialect.ForUpdate(b.d)), key...).Scan(&v); err != nil {
				if errors.Is(err, sql.ErrNoRows) {
					return b.forgetFailure(ctx, tx, k) // the row is gone
				}
				return err
			}
			v = move.Normalize(v)
			out, terr := b.transform.Apply(v)
			if terr != nil {
				return b.recordFailure(ctx, tx, key, terr)
			}
			if _, err := tx.ExecContext(ctx, tx.Rebind(b.writeSQL()), b.writeArgs(key, out)...); err != nil {
				return err
			}
			return b.forgetFailure(ctx, tx, k)
		})
		if err != nil {
			return fmt.Errorf("dualwrite: retry failed row %s: %w", k, err)
		}
	}
	var n int64
	if err := b.mg.db.GetContext(ctx, &n, b.mg.db.Rebind(`SELECT COUNT(*) FROM `+FailuresTable+` WHERE move = ?`), b.m.Name); err != nil {
		return err
	}
	res.Failed = n
	return nil
}

func (b *bf) forgetFailure(ctx context.Context, tx *sqlx.Tx, k string) error {
	if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM `+FailuresTable+` WHERE move = ? AND row_key = ?`), b.m.Name, k); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, tx.Rebind(`UPDATE `+MovesTable+` SET failed_rows = (SELECT COUNT(*) FROM `+FailuresTable+` WHERE move = ?) WHERE name = ?`), b.m.Name, b.m.Name)
	return err
}

func (b *bf) withTx(ctx context.Context, fn func(*sqlx.Tx) error) error {
	tx, err := b.mg.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// FailedRow is a row whose transform failed.
type FailedRow struct {
	Key      string    `db:"row_key" json:"key"`
	Error    string    `db:"error" json:"error"`
	FailedAt time.Time `db:"failed_at" json:"failed_at"`
}

// KeyValues decodes Key into the key's column values.
func (f FailedRow) KeyValues() ([]any, error) { return decodeKey(f.Key) }

// FailedRows lists up to limit rows recorded as failed.
func (mg *Manager) FailedRows(ctx context.Context, name string, limit int) ([]FailedRow, error) {
	if _, err := mg.Move(name); err != nil {
		return nil, err
	}
	var out []FailedRow
	err := mg.db.SelectContext(ctx, &out, mg.db.Rebind(`SELECT row_key, error, failed_at FROM `+FailuresTable+` WHERE move = ? ORDER BY failed_at, row_key`+dialect.LimitSQL(limit)), name)
	return out, err
}
