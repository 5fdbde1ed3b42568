package dualwrite

import (
	"context"
	"errors"
	"time"

	"github.com/tandem-go/tandem/move"
)

// AdvanceOpen advances every move whose next phase is open, once, up to
// phase until (contract only for moves already finalized: finalize stays an
// operator's act). It returns the transitions made; a closed gate is not an
// error.
func (mg *Manager) AdvanceOpen(ctx context.Context, until move.Phase) ([]Transition, error) {
	var done []Transition
	for _, name := range mg.order {
		cur, err := mg.Phase(ctx, name)
		if err != nil {
			return done, err
		}
		next, ok := cur.Next()
		if !ok || next > until {
			continue
		}
		// WithExpectFrom: if another runner moved the move since cur was read,
		// next could be a step back from where it stands now.
		tr, err := mg.Advance(ctx, name, next, WithExpectFrom(cur), WithNote("advanced automatically: gate open"))
		var ge *GateError
		var na *NotAdjacentError
		var pc *PhaseChangedError
		switch {
		case errors.As(err, &ge), errors.As(err, &na), errors.As(err, &pc):
			// Closed, or another runner moved first: try at the next tick.
		case err != nil:
			return done, err
		case tr.Changed: // not when another runner made it first
			done = append(done, tr)
		}
	}
	return done, nil
}

// AutoAdvance calls AdvanceOpen every interval until ctx ends, so moves go
// forward as soon as their gates open (the instances acknowledged, the
// backfill verified). It returns ctx's error, or the first error that is
// not a closed gate; onAdvance, when set, hears of every transition.
func (mg *Manager) AutoAdvance(ctx context.Context, every time.Duration, until move.Phase, onAdvance func(Transition)) error {
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		trs, err := mg.AdvanceOpen(ctx, until)
		if err != nil {
			return err
		}
		if onAdvance != nil {
			for _, tr := range trs {
				onAdvance(tr)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
		}
	}
}
