package dualwrite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tandem-go/tandem/internal/dialect"
	"github.com/tandem-go/tandem/move"
)

// Effective is the phase an instance acts on: the ledger's phase, capped by
// the highest phase its build ships.
func Effective(ledger, build move.Phase) move.Phase {
	return min(ledger, build)
}

// Tracker is the instance side of moves: it reads the ledger and says, with
// no I/O on the hot path, which phase this instance acts on for each move.
// Report Phases with every heartbeat (services.Heartbeat.Phases): the next
// transition waits until every instance acts on the current phase.
type Tracker struct {
	db      *dialect.DB
	release int64
	moves   []move.Move
	phases  atomic.Pointer[map[string]move.Phase]
}

// NewTracker reads the ledger once for the moves this build knows. It fails
// with a *TooOldError when release cannot act on a move's ledger phase
// once the move is at write-both or later, unless the move uses triggers.
// A running instance may lag one phase (Refresh), because the gates wait
// for it; a starting one may not: an instance that started acting on
// legacy after the backfill passed its rows would write old only, and the
// gate into read-new could not know which rows to look at again. The error
// names the release to run.
func NewTracker(ctx context.Context, db *dialect.DB, release int64, moves []move.Move) (*Tracker, error) {
	if err := move.ValidateAll(moves); err != nil {
		return nil, fmt.Errorf("dualwrite: tracker: %w", err)
	}
	t := &Tracker{db: db, release: release, moves: moves}
	if err := t.refresh(ctx, true); err != nil {
		return nil, err
	}
	return t, nil
}

// Refresh rereads the ledger. On error the phases stay as they were. A
// *TooOldError means the ledger moved two phases past this build (one
// phase behind is allowed while running): stop the instance (see Run).
func (t *Tracker) Refresh(ctx context.Context) error { return t.refresh(ctx, false) }

func (t *Tracker) refresh(ctx context.Context, starting bool) error {
	out := make(map[string]move.Phase, len(t.moves))
	for _, m := range t.moves {
		ledger := move.Legacy
		if ok, err := t.db.Dialect.TableExists(ctx, t.db, MovesTable); err != nil {
			return fmt.Errorf("dualwrite: tracker: %w", err)
		} else if ok {
			row, found, err := readLedger(ctx, t.db, m.Name)
			if err != nil {
				return fmt.Errorf("dualwrite: tracker: read ledger: %w", err)
			}
			if found {
				ledger = row.phase
			}
		}
		can := m.Releases.Highest(t.release)
		// With triggers the database keeps old and new in sync for any
		// mix of phases short of contract, so a lagging build is safe.
		lagOK := m.Triggers && ledger <= move.WriteNew
		switch {
		case starting && !m.Triggers && ledger >= move.WriteBoth && can < ledger:
			return &TooOldError{Move: m.Name, Release: t.release, Can: can, Ledger: ledger, Need: m.Releases.For(ledger), Starting: true}
		case !lagOK && int(can) < int(ledger)-1:
			return &TooOldError{Move: m.Name, Release: t.release, Can: can, Ledger: ledger, Need: m.Releases.For(ledger - 1)}
		}
		out[m.Name] = Effective(ledger, can)
	}
	t.phases.Store(&out)
	return nil
}

// Phase returns the phase this instance acts on for the move (legacy for a
// move it does not know).
func (t *Tracker) Phase(name string) move.Phase {
	if p := t.phases.Load(); p != nil {
		return (*p)[name]
	}
	return move.Legacy
}

// Phases returns every move's phase by name, for services.Heartbeat.Phases.
func (t *Tracker) Phases() map[string]string {
	out := map[string]string{}
	if p := t.phases.Load(); p != nil {
		for k, v := range *p {
			out[k] = v.String()
		}
	}
	return out
}

// Run refreshes every interval until ctx ends, and returns ctx's error. A
// failed refresh keeps the last phases, is passed to onError and retried at
// the next tick, except a *TooOldError: the operator moved the ledger two
// phases past what this build can act on, so the instance must stop
// serving. Run returns that error (errors.Is ErrTooOld) at once; the caller
// shuts the instance down (and deregisters it) rather than keep acting on a
// phase the cluster has left.
func (t *Tracker) Run(ctx context.Context, every time.Duration, onError func(error)) error {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
			err := t.Refresh(ctx)
			if err == nil {
				continue
			}
			if onError != nil {
				onError(err)
			}
			if errors.Is(err, ErrTooOld) {
				return err
			}
		}
	}
}
