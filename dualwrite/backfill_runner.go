package dualwrite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/tandem-go/tandem/internal/sqldialect"
)

// Runner is the process running a move's backfill or verify, as the ledger
// records it for as long as it runs.
//
// Who may run is decided by a runner lock that dies with its holder
// (sqldialect.RunnerLock: a session lock on a connection of the runner's own on
// PostgreSQL and MySQL/MariaDB, an flock next to the database file on
// SQLite), not by a lease that runs out: after a kill -9 the next run takes
// over at once and resumes from the saved cursor, while a second run beside
// a live one is refused with the holder named.
type Runner struct {
	Op    string    `json:"op"` // "backfill", "reverse-backfill" or "verify"
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
	// Alive: the runner's lock is held, it is running now. A runner that is
	// recorded but not alive ended without clearing its record (killed,
	// crashed, its database session cut): a rerun takes over at once.
	Alive bool `json:"alive"`
}

func (r Runner) String() string {
	return fmt.Sprintf("%s on host %s, pid %d, since %s", r.Op, r.Host, r.PID, r.Since.UTC().Format(time.RFC3339))
}

// runnerKey names a move's runner lock: one per move, shared by both
// backfill directions and verify.
func runnerKey(name string) string { return "move:" + name }

// runnerRecord is a Runner as lease_owner keeps it: JSON, short enough for
// the column (the host is cut at 120 bytes), unique per run (since has
// nanoseconds), so a batch can check that the record is still its own.
type runnerRecord struct {
	Op    string    `json:"op"`
	Host  string    `json:"host"`
	PID   int       `json:"pid"`
	Since time.Time `json:"since"`
}

func (mg *Manager) newRunner(op string) string {
	host, _ := os.Hostname()
	if len(host) > 120 {
		host = host[:120]
	}
	b, _ := json.Marshal(runnerRecord{Op: op, Host: host, PID: os.Getpid(), Since: mg.utc()})
	return string(b)
}

// takeRunner takes the move's runner lock for op, or returns a *BusyError
// naming the live holder.
func (mg *Manager) takeRunner(ctx context.Context, name, op string) (*sqldialect.RunnerLock, error) {
	lk, err := sqldialect.TryRunnerLock(ctx, mg.db, runnerKey(name))
	if err == nil {
		return lk, nil
	}
	if !errors.Is(err, sqldialect.ErrHeld) {
		return nil, fmt.Errorf("dualwrite: %s %s: %w", op, name, err)
	}
	busy := &BusyError{Move: name, Op: op}
	if row, ok, rerr := readLedger(ctx, mg.db, name); rerr == nil && ok && row.LeaseOwner.Valid {
		r := parseRunner(row.LeaseOwner.String)
		r.Alive = true
		busy.Holder = &r
	}
	return nil, busy
}

// runnerOf reads the move's recorded runner and whether it lives; nil when
// none is recorded. It only reads.
func (mg *Manager) runnerOf(ctx context.Context, row ledgerRow) (*Runner, error) {
	if !row.LeaseOwner.Valid {
		return nil, nil
	}
	r := parseRunner(row.LeaseOwner.String)
	held, err := sqldialect.RunnerLockHeld(ctx, mg.db, runnerKey(row.Name))
	if err != nil {
		return nil, err
	}
	r.Alive = held
	return &r, nil
}

// parseRunner reads a lease_owner; an older tandem wrote "host:pid:random",
// which is shown as it is.
func parseRunner(s string) Runner {
	var rec runnerRecord
	if err := json.Unmarshal([]byte(s), &rec); err != nil {
		return Runner{Op: "backfill", Host: s}
	}
	return Runner{Op: rec.Op, Host: rec.Host, PID: rec.PID, Since: rec.Since}
}

// rerunCommand is the command that runs op on the move again.
func rerunCommand(name, op string) string {
	switch op {
	case "verify":
		return "tandem moves verify " + name
	case "reverse-backfill":
		return "tandem moves backfill " + name + " --reverse"
	}
	return "tandem moves backfill " + name
}

// unfinishedBackfill says what to do about a backfill that has not
// finished: wait for its live runner, or rerun it, which resumes at once.
func (mg *Manager) unfinishedBackfill(ctx context.Context, name string, fw progress, row ledgerRow) (msg string, running bool) {
	left := max(fw.RowsTotal-fw.RowsDone, 0)
	msg = fmt.Sprintf("the backfill is not finished: %d of %d rows done, about %d left; ", fw.RowsDone, fw.RowsTotal, left)
	r, err := mg.runnerOf(ctx, row)
	switch {
	case err != nil:
		return msg + "whether its runner lives could not be read (" + err.Error() + "); run tandem moves backfill " + name + " to resume it (it is refused, naming the holder, if one runs)", false
	case r != nil && r.Alive:
		return msg + "it is running (" + r.String() + "): wait for it to finish", true
	case r != nil:
		return msg + "its runner (" + r.String() + ") is gone; run tandem moves backfill " + name + ": it resumes from the cursor at once", false
	}
	return msg + "run tandem moves backfill " + name + ": it resumes from the cursor at once", false
}
