package dualwrite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// Progress of one backfill direction, as the ledger keeps it.
type progress struct {
	Cursor    sql.NullString `db:"p_cursor"`
	Bound     sql.NullString `db:"p_bound"`
	StartedAt sql.NullTime   `db:"p_started_at"`
	DoneAt    sql.NullTime   `db:"p_done_at"`
	RowsDone  int64          `db:"p_rows_done"`
	RowsTotal int64          `db:"p_rows_total"`
}

// ledgerRow is one row of tandem_moves.
type ledgerRow struct {
	Name             string         `db:"name"`
	Phase            string         `db:"phase"`
	PhaseAt          time.Time      `db:"phase_at"`
	PhaseRelease     int64          `db:"phase_release"`
	OldStale         int64          `db:"old_stale"`
	FailedRows       int64          `db:"failed_rows"`
	VerifiedAt       sql.NullTime   `db:"verified_at"`
	Mismatches       sql.NullInt64  `db:"mismatches"`
	FinalizedAt      sql.NullTime   `db:"finalized_at"`
	FinalizedRelease sql.NullInt64  `db:"finalized_release"`
	LeaseOwner       sql.NullString `db:"lease_owner"`
	LeaseUntil       sql.NullTime   `db:"lease_until"`
	UpdatedAt        time.Time      `db:"updated_at"`

	Forward progress `db:"-"`
	Reverse progress `db:"-"`
	phase   move.Phase
}

// failed_rows is derived from tandem_move_failures, the one record of the
// rows a transform could not convert (the column of that name is no longer
// written).
const ledgerCols = `name, phase, phase_at, phase_release, old_stale, (SELECT COUNT(*) FROM ` + FailuresTable + ` f WHERE f.move = ` + MovesTable + `.name) AS failed_rows, verified_at, mismatches, finalized_at, finalized_release, lease_owner, lease_until, updated_at`

func progressCols(prefix string) string {
	return prefix + "_cursor AS p_cursor, " + prefix + "_bound AS p_bound, " + prefix + "_started_at AS p_started_at, " + prefix + "_done_at AS p_done_at, " + prefix + "_rows_done AS p_rows_done, " + prefix + "_rows_total AS p_rows_total"
}

// readLedger reads one move's row; ok is false when the move has none yet.
func readLedger(ctx context.Context, q dialect.Querier, name string) (ledgerRow, bool, error) {
	var r ledgerRow
	err := q.GetContext(ctx, &r, q.Rebind(`SELECT `+ledgerCols+` FROM `+MovesTable+` WHERE name = ?`), name)
	if errors.Is(err, sql.ErrNoRows) {
		return ledgerRow{Name: name, Phase: move.Legacy.String()}, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := q.GetContext(ctx, &r.Forward, q.Rebind(`SELECT `+progressCols("backfill")+` FROM `+MovesTable+` WHERE name = ?`), name); err != nil {
		return r, false, err
	}
	if err := q.GetContext(ctx, &r.Reverse, q.Rebind(`SELECT `+progressCols("reverse")+` FROM `+MovesTable+` WHERE name = ?`), name); err != nil {
		return r, false, err
	}
	p, err := move.ParsePhase(r.Phase)
	if err != nil {
		return r, false, fmt.Errorf("ledger row for %s: %w", name, err)
	}
	r.phase = p
	return r, true, nil
}

// ensureLedger creates the move's row at legacy when it has none. The
// caller holds the move's lock: on PostgreSQL a failed insert would abort
// the lock's transaction, so the row is looked for first.
func ensureLedger(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, name string, release int64, now time.Time) error {
	var n int
	if err := q.GetContext(ctx, &n, q.Rebind(`SELECT COUNT(*) FROM `+MovesTable+` WHERE name = ?`), name); err != nil || n > 0 {
		return err
	}
	_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+MovesTable+` (name, phase, phase_at, phase_release, updated_at) VALUES (?, ?, ?, ?, ?)`),
		name, move.Legacy.String(), now, release, now)
	if err != nil && d.IsUniqueViolation(err) {
		return nil
	}
	return err
}

// encodeKey writes key values as a JSON array, the form of cursors and of
// failed rows' keys.
func encodeKey(vals []any) string {
	out := make([]any, len(vals))
	for i, v := range vals {
		out[i] = move.Normalize(v)
		if t, ok := out[i].(time.Time); ok {
			out[i] = t.UTC().Format(time.RFC3339Nano)
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// decodeKey reads what encodeKey wrote, keeping integers exact.
func decodeKey(s string) ([]any, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.UseNumber()
	var raw []any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode key %q: %w", s, err)
	}
	for i, v := range raw {
		if n, ok := v.(json.Number); ok {
			if iv, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				raw[i] = iv
			} else if fv, err := n.Float64(); err == nil {
				raw[i] = fv
			}
		}
	}
	return raw, nil
}
