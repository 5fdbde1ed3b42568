package dualwrite

import (
	"context"
	"fmt"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/services"
)

// claim checks that the backfill may run, records this run as the move's
// runner (its runner lock is already held) and, on a first run or a
// restart, fixes the bound and the total.
func (b *bf) claim(ctx context.Context, res *BackfillResult) error {
	mg, m := b.mg, b.m
	return sqldialect.Of(mg.db).Locked(ctx, mg.db.SQLX(), "move:"+m.Name, mg.lockWait, func(ctx context.Context, q dialect.Querier) error {
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

// mayRun asks the backfill's gate (see opGate).
func (b *bf) mayRun(ctx context.Context, q dialect.Querier, row ledgerRow, snap *services.Snapshot) error {
	op := OpBackfill
	if b.cfg.reverse {
		op = OpReverseBackfill
	}
	return b.mg.refuse(ctx, b.mg.input(b.m, row, snap, q), op)
}
