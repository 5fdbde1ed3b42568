package dualwrite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
)

// Example_definitions shows the ledger as the one truth about a move: New
// records it, a declaration that drifts is refused with the field named,
// Amend records an intended change, and Load rebuilds the move with no
// declaration at all, as the CLI does.
func Example_definitions() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "shop.db"))
	defer db.Close()
	db.MustExec(`CREATE TABLE products (id INTEGER PRIMARY KEY, price DECIMAL(12,2))`)
	_, _ = schema.Ensure(ctx, db, dualwrite.Tables()) // tandem schema ensure

	m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "INTEGER"}},
		Forward:  move.Transform{SQL: "CAST(ROUND({value} * 100) AS INTEGER)"},
		Backward: move.Transform{SQL: "{value} / 100.0"},
		Releases: move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45}}
	if _, err := dualwrite.New(ctx, db, []move.Move{m}); err != nil {
		fmt.Println(err)
		return
	}

	later := m
	later.Releases.ReadNew = 44
	_, err := dualwrite.New(ctx, db, []move.Move{later})
	var drift *dualwrite.DriftError
	if errors.As(err, &drift) {
		fmt.Println(errors.Is(err, dualwrite.ErrDrift), drift.Fields[0])
	}
	_, err = dualwrite.New(ctx, db, []move.Move{later}, dualwrite.WithAmend("price_cents", "read-new ships in 44"))
	fmt.Println(err)

	mg, _ := dualwrite.Load(ctx, db, nil)
	fmt.Println(mg.Moves()[0].Releases.ReadNew)
	defs, _ := dualwrite.DefinitionHistory(ctx, db, db.Engine(), "price_cents")
	fmt.Println(defs[1].Version, defs[1].Change)

	var plan bytes.Buffer
	_ = dualwrite.WritePlan(&plan, []move.Move{later})
	p, _ := dualwrite.ParsePlan(&plan)
	fmt.Println(dualwrite.Digest(p.Moves[0]) == dualwrite.Digest(later))
	// Output:
	// true releases.read_new: recorded 43, declared 44
	// <nil>
	// 44
	// 2 definition amended: releases.read_new: 43 -> 44 (read-new ships in 44)
	// true
}
