package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// Irreversible reports whether the transition from from to to cannot be
// undone: the contract, which drops the old column (and the sync
// triggers) with the data it still held. A command should ask before it
// and offer a backup (tandem moves advance --backup FILE).
func Irreversible(from, to move.Phase) bool {
	return to == move.Contracted && from != move.Contracted
}

// Backup is a copy of the database taken before a step of a move, as the
// ledger records it (tandem_backups).
type Backup struct {
	Move string `db:"move" json:"move"`
	// Seq numbers the move's backups from 1.
	Seq int64 `db:"seq" json:"seq"`
	// Before is the phase the step entered once the copy was taken.
	Before string `db:"before_phase" json:"before"`
	// Path is the file, absolute, on the host that took it (Host).
	Path  string `db:"path" json:"path"`
	Host  string `db:"host" json:"host"`
	Bytes int64  `db:"bytes" json:"bytes"`
	// Tool made the copy: "VACUUM INTO", "pg_dump", "mariadb-dump"...
	Tool string `db:"tool" json:"tool"`
	// TakenAt is when the copy started: the moment it holds.
	TakenAt time.Time `db:"taken_at" json:"taken_at"`
	Release int64     `db:"app_release" json:"release"`
}

// ErrBadBackup means a backup to record lacks its move, path, tool or time.
var ErrBadBackup = errors.New("dualwrite: a backup needs its move, step, file, tool and time")

const backupCols = `move, seq, before_phase, path, host, bytes, tool, taken_at, app_release`

// RecordBackup records in the ledger that a copy of the database was taken
// before the move's step to b.Before, and returns it with its Seq. Status
// lists it with the move.
func (mg *Manager) RecordBackup(ctx context.Context, b Backup) (Backup, error) {
	m, err := mg.Move(b.Move)
	if err != nil {
		return Backup{}, err
	}
	if _, err := move.ParsePhase(b.Before); err != nil || b.Path == "" || b.Tool == "" || b.TakenAt.IsZero() {
		return Backup{}, fmt.Errorf("%w: %+v", ErrBadBackup, b)
	}
	b.Release, b.TakenAt = mg.release, b.TakenAt.UTC()
	err = sqldialect.Of(mg.db).Locked(ctx, mg.db.SQLX(), "move:"+m.Name, mg.lockWait, func(ctx context.Context, q dialect.Querier) error {
		if err := q.GetContext(ctx, &b.Seq, q.Rebind(`SELECT COALESCE(MAX(seq), 0) + 1 FROM `+BackupsTable+` WHERE move = ?`), m.Name); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, q.Rebind(`INSERT INTO `+BackupsTable+` (`+backupCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			b.Move, b.Seq, b.Before, b.Path, b.Host, b.Bytes, b.Tool, b.TakenAt, b.Release)
		return err
	})
	if err != nil {
		return Backup{}, fmt.Errorf("dualwrite: record the backup of %s: %w", b.Move, err)
	}
	mg.log.Info("backup recorded", "move", b.Move, "before", b.Before, "path", b.Path, "bytes", b.Bytes, "tool", b.Tool)
	return b, nil
}

// readBackups returns a move's backups, oldest first; none on a ledger
// whose backups table does not exist yet (reads never create it).
func readBackups(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, name string) ([]Backup, error) {
	out := []Backup{}
	if ok, err := d.TableExists(ctx, q, BackupsTable); err != nil || !ok {
		return out, err
	}
	err := q.SelectContext(ctx, &out, q.Rebind(`SELECT `+backupCols+` FROM `+BackupsTable+` WHERE move = ? ORDER BY seq`), name)
	for i := range out {
		out[i].TakenAt = out[i].TakenAt.UTC()
	}
	return out, err
}

// String says what the backup is, for a person.
func (b Backup) String() string {
	where := b.Path
	if b.Host != "" {
		where += " on " + b.Host
	}
	return strings.TrimSpace(fmt.Sprintf("backup %d before %s: %s (%d bytes, %s, taken %s)", b.Seq, b.Before, where, b.Bytes, b.Tool, b.TakenAt.Format(time.RFC3339)))
}

// FinalizeGate reports whether Finalize would finalize the move now, and
// what blocks it; finalized says it is finalized already (Finalize then
// changes nothing). It only reads. A command asks before a finalize only
// when the gate is open: finalizing cannot be undone either (the move can
// no longer go back, and older releases may no longer register).
func (mg *Manager) FinalizeGate(ctx context.Context, name string) (g Gate, finalized bool, err error) {
	m, err := mg.Move(name)
	if err != nil {
		return Gate{}, false, err
	}
	snap, err := mg.snapshot(ctx)
	if err != nil {
		return Gate{}, false, fmt.Errorf("dualwrite: finalize gate %s: %w", name, err)
	}
	row, _, err := mg.readRow(ctx, mg.db, name)
	if err != nil {
		return Gate{}, false, fmt.Errorf("dualwrite: finalize gate %s: %w", name, err)
	}
	if row.FinalizedAt.Valid {
		return Gate{Move: name, Op: OpFinalize, From: row.phase, To: row.phase, Open: true}, true, nil
	}
	g, err = mg.opGate(ctx, mg.input(m, row, snap, mg.db), OpFinalize)
	return g, false, err
}
