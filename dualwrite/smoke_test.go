package dualwrite

import (
	"context"
	"fmt"
	"testing"

	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

func TestSmoke(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		if _, err := db.ExecContext(ctx, `CREATE TABLE products (id BIGINT PRIMARY KEY, price DECIMAL(12,2))`); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 2500; i++ {
			if _, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO products (id, price) VALUES (?, ?)`), i, fmt.Sprintf("%d.%02d", i, i%100)); err != nil {
				t.Fatal(err)
			}
		}
		m := move.Move{Name: "cents", Table: "products", Key: []string{"id"}, Old: "price",
			New:      move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "BIGINT"}},
			Forward:  move.Transform{SQL: "CAST(ROUND({value} * 100) AS BIGINT)", Dialects: map[dialect.Name]string{dialect.MySQL: "CAST(ROUND({value} * 100) AS SIGNED)", dialect.SQLite: "CAST(ROUND({value} * 100) AS INTEGER)"}},
			Backward: move.Transform{SQL: "{value} / 100.0"}}
		if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
			t.Fatal(err)
		}
		reg, err := services.New(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		mg, err := New(ctx, db, []move.Move{m}, WithRegistry(reg), WithRelease(1))
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register(ctx, services.Instance{ID: "a", Service: "shop", Release: 1}); err != nil {
			t.Fatal(err)
		}
		ack := func(p move.Phase) {
			if err := reg.Heartbeat(ctx, "a", services.Heartbeat{Phases: map[string]string{"cents": p.String()}}); err != nil {
				t.Fatal(err)
			}
		}
		tr, err := mg.Advance(ctx, "cents", move.WriteBoth)
		t.Logf("%+v %v", tr, err)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mg.Backfill(ctx, "cents"); err == nil {
			t.Fatal("backfill before acks")
		} else {
			t.Log(err)
		}
		ack(move.WriteBoth)
		res, err := mg.Backfill(ctx, "cents", BatchSize(100, 0, 0))
		t.Logf("%+v %v", res, err)
		if err != nil {
			t.Fatal(err)
		}
		_, err = mg.Advance(ctx, "cents", move.ReadNew)
		t.Log(err)
		v, err := mg.Verify(ctx, "cents")
		t.Logf("%+v %v", v, err)
		if _, err := mg.Advance(ctx, "cents", move.ReadNew); err != nil {
			t.Fatal(err)
		}
		ack(move.ReadNew)
		if _, err := mg.Advance(ctx, "cents", move.WriteNew); err != nil {
			t.Fatal(err)
		}
		_, err = mg.Advance(ctx, "cents", move.Contracted)
		t.Log(err)
		ack(move.WriteNew)
		if _, err := mg.Finalize(ctx, "cents", ""); err != nil {
			t.Fatal(err)
		}
		tr, err = mg.Advance(ctx, "cents", move.Contracted)
		t.Logf("%+v %v", tr, err)
		if err != nil {
			t.Fatal(err)
		}
	})
}
