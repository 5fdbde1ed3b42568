package dualwrite

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
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
}

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
	d      sqldialect.Dialect
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
	// conn is the run's own connection, set up by sqldialect.BulkSession.
	conn *sqlx.Conn
	// holder is this run's record in lease_owner (see Runner), written
	// when the run starts and checked by every batch.
	holder string
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
// transactions (sqldialect.BulkSession): on PostgreSQL their commits do not
// wait for the WAL flush, so a server crash can lose the last batches and
// their cursors together, and a rerun redoes them; the batch that records
// completion commits durably.
func (mg *Manager) Backfill(ctx context.Context, name string, opts ...Option) (BackfillResult, error) {
	cfg, err := newBackfillConfig(opts)
	if err != nil {
		return BackfillResult{}, err
	}
	m, err := mg.Move(name)
	if err != nil {
		return BackfillResult{}, err
	}
	b := &bf{mg: mg, m: m, d: sqldialect.Of(mg.db), cfg: cfg}
	b.setup()
	if b.mode == "go" {
		if err := mg.CheckTransform(name, cfg.reverse, cfg.forceGo); err != nil {
			return BackfillResult{}, err
		}
	}
	res := BackfillResult{Move: name, Op: b.direction, Mode: b.mode}
	lk, err := mg.takeRunner(ctx, name, b.direction)
	if err != nil {
		return res, err
	}
	// Deferred calls run last first: the record is cleared, then the lock
	// given up, so a record without a live lock means its runner died.
	defer lk.Release(ctx) //nolint:errcheck // the lock also ends with the process
	b.holder = mg.newRunner(b.direction)
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
	b.tbl = sqldialect.MustQuote(d, m.Table)
	b.ntbl = sqldialect.MustQuote(d, m.NewTable())
	b.keys, _ = quoteAll(d, m.Key)
	b.nkeys, _ = quoteAll(d, m.NewKey())
	oldc, newc := sqldialect.MustQuote(d, m.Old), sqldialect.MustQuote(d, m.New.Column)
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
