package dualwrite

import (
	"context"
	"fmt"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/triggers"
)

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
		if err := b.mayRun(ctx, q, row, snap); err != nil {
			return err
		}
		return b.start(ctx, q, row, res)
	})
}

// mayRun is the backfill's gate: the move's phase, and who writes both (or
// the triggers that do it for them).
func (b *bf) mayRun(ctx context.Context, q dialect.Querier, row ledgerRow, snap *services.Snapshot) error {
	mg, m := b.mg, b.m
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
	return nil
}

func checkTriggers(ctx context.Context, q dialect.Querier, set triggers.Set) error {
	_, err := triggers.Check(ctx, q, set)
	return err
}
