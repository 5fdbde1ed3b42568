package dualwrite_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// A composite key, across tables: Heat-like resources keyed by (stack,
// name), properties moved into a table keyed the same way. The backfill is
// killed half way and resumed, in SQL and in Go.
func TestCompositeKeyBackfill(t *testing.T) {
	for _, mode := range []string{"sql", "go"} {
		t.Run(mode, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
				ctx := context.Background()
				db.MustExec(`CREATE TABLE resource (stack_id BIGINT NOT NULL, name VARCHAR(40) NOT NULL, properties TEXT, PRIMARY KEY (stack_id, name))`)
				n := 0
				for s := 1; s <= 30; s++ {
					for r := 0; r < 40; r++ {
						db.MustExec(db.Rebind(`INSERT INTO resource (stack_id, name, properties) VALUES (?, ?, ?)`), s, fmt.Sprintf("res-%02d", r), fmt.Sprintf(`{"s":%d,"r":%d}`, s, r))
						n++
					}
				}
				m := move.Move{Name: "props", Table: "resource", Key: []string{"stack_id", "name"}, Old: "properties",
					New: move.Target{Table: "resource_props", Column: "data", Key: []string{"stack_id", "resource_name"},
						Type: move.ColumnType{SQL: "TEXT"}, KeyType: []move.ColumnType{{SQL: "BIGINT"}, {SQL: "VARCHAR(40)"}}},
					Forward: move.Transform{Go: func(v any) (any, error) { return v, nil }, SQL: "{value}"}}
				if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
					t.Fatal(err)
				}
				reg, err := services.New(ctx, db)
				if err != nil {
					t.Fatal(err)
				}
				mg, err := dualwrite.New(ctx, db, []move.Move{m}, dualwrite.WithRegistry(reg))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := mg.Advance(ctx, "props", move.WriteBoth); err != nil {
					t.Fatal(err)
				}
				opts := []dualwrite.Option{dualwrite.WithBatchSize(70, 70, 70)}
				if mode == "go" {
					opts = append(opts, dualwrite.WithGoTransforms())
				}
				kctx, cancel := context.WithCancel(ctx)
				_, err = mg.Backfill(kctx, "props", append(opts, dualwrite.WithProgress(func(p dualwrite.Progress) {
					if p.Batch == 7 {
						cancel()
					}
				}))...)
				cancel()
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("killed: %v", err)
				}
				var got int
				if err := db.GetContext(ctx, &got, `SELECT COUNT(*) FROM resource_props`); err != nil || got != 7*70 {
					t.Fatalf("%d rows moved after 7 batches of 70 (%v)", got, err)
				}
				res, err := mg.Backfill(ctx, "props", opts...)
				if err != nil || !res.Resumed || res.Rows != int64(n-7*70) || res.Done != int64(n) {
					t.Fatalf("resume: %+v %v", res, err)
				}
				v, err := mg.Verify(ctx, "props")
				if err != nil || v.Mismatches != 0 || v.Checked != int64(n) {
					t.Fatalf("verify: %+v %v", v, err)
				}
				r, _ := dualwrite.NewRouter(m, db.Engine())
				if x, err := r.Read(ctx, db, move.ReadNew, 30, "res-39"); err != nil || x != `{"s":30,"r":39}` {
					t.Fatalf("read (30, res-39): %v %v", x, err)
				}
			})
		})
	}
}
