package dualwrite

import (
	"context"
	"errors"
	"fmt"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
)

// preflight checks what must hold before tandem writes anything for a move
// at legacy (its definition, its ledger row, the expand step's DDL): the
// move's tables and columns exist (a *move.SchemaError otherwise, bad
// input that names the missing table or column and the next command), and
// the engine itself accepts each SQL transform as the one expression
// tandem generates (move.CheckTransforms). It only reads; the schema is
// read on q (under the move's lock when the caller holds it).
func (mg *Manager) preflight(ctx context.Context, q dialect.Querier, m move.Move, next string) error {
	err := m.CheckSchema(ctx, q, mg.db.Engine(), move.Legacy)
	var se *move.SchemaError
	if errors.As(err, &se) {
		return fmt.Errorf("%w (create it, or correct the move's declaration, then run %s again)", err, next)
	}
	if err != nil {
		return err
	}
	return m.CheckTransforms(ctx, mg.db.SQLX(), mg.db.Engine())
}

// preflightNew runs preflight for each declared move the ledger has not
// recorded yet, before New writes anything: a move already recorded was
// checked when it was, and its schema now depends on its phase.
func (mg *Manager) preflightNew(ctx context.Context) error {
	ready, err := definitionsReady(ctx, mg.db, sqldialect.Of(mg.db))
	if err != nil {
		return fmt.Errorf("dualwrite: %w", err)
	}
	for _, name := range mg.order {
		if ready {
			_, found, err := readDefinition(ctx, mg.db, name)
			if err != nil {
				return fmt.Errorf("dualwrite: %w", err)
			}
			if found {
				continue
			}
		}
		if err := mg.preflight(ctx, mg.db, mg.moves[name], "tandem moves apply --plan FILE"); err != nil {
			return fmt.Errorf("dualwrite: record move %s: %w", name, err)
		}
	}
	return nil
}
