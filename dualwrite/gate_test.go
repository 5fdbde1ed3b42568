package dualwrite_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

func blockers(t *testing.T, err error) []dualwrite.Blocker {
	t.Helper()
	var ge *dualwrite.GateError
	if !errors.As(err, &ge) || !errors.Is(err, dualwrite.ErrBlocked) {
		t.Fatalf("want a *GateError, got %v", err)
	}
	return ge.Gate.Blockers
}

func kinds(bs []dualwrite.Blocker) string {
	var k []string
	for _, b := range bs {
		k = append(k, string(b.Kind))
	}
	return strings.Join(k, ",")
}

// toWriteNew walks to write-new with instances a and b acting on it.
func (e *env) toWriteNew() {
	e.t.Helper()
	e.register("b", 1, move.Legacy)
	e.toWriteBoth()
	e.ack("b", move.WriteBoth)
	if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
		e.t.Fatal(err)
	}
	e.advance(move.ReadNew)
	e.ack("a", move.ReadNew)
	e.ack("b", move.ReadNew)
	e.advance(move.WriteNew)
	e.ack("a", move.WriteNew)
	e.ack("b", move.WriteNew)
}

func TestContractRefusedWhileGateClosed(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 200, priceMove())
		e.toWriteNew()
		e.ack("b", move.ReadNew) // b has not picked write-new up yet
		_, err := e.mg.Advance(e.ctx, e.m.Name, move.Contracted)
		bs := blockers(t, err)
		if kinds(bs) != "instances,finalize" || len(bs[0].Instances) != 1 || bs[0].Instances[0].ID != "b" || !strings.Contains(err.Error(), "b (shop on h-b, release 1, up, acts on read-new") {
			t.Fatalf("contract with b on read-new: %v", err)
		}
		if _, err := e.mg.Finalize(e.ctx, e.m.Name, ""); !errors.Is(err, dualwrite.ErrBlocked) || !strings.Contains(err.Error(), "b (shop") {
			t.Fatalf("finalize with b on read-new: %v", err)
		}
		// A missing instance still counts: delete it to move on.
		if err := e.reg.Delete(e.ctx, "b"); err != nil {
			t.Fatal(err)
		}
		_, err = e.mg.Advance(e.ctx, e.m.Name, move.Contracted)
		if bs := blockers(t, err); kinds(bs) != "finalize" {
			t.Fatalf("contract before finalize: %v", err)
		}
		if p := e.phase(); p != move.WriteNew {
			t.Fatalf("phase %s after refusals", p)
		}
		if !hasColumn(t, db, "products", "price") {
			t.Fatal("a refused contract dropped the column")
		}
		rel, err := e.mg.Finalize(e.ctx, e.m.Name, "price move done")
		if err != nil || rel != 1 {
			t.Fatalf("finalize: %d %v", rel, err)
		}
		// Finalized: older releases may no longer join, and no way back.
		if err := e.reg.Register(e.ctx, services.Instance{ID: "old", Service: "shop", Release: 0 + 1}); err != nil {
			t.Fatalf("same release must still register: %v", err)
		}
		_, err = e.mg.Advance(e.ctx, e.m.Name, move.ReadNew)
		if !errors.Is(err, dualwrite.ErrFinalized) {
			t.Fatalf("rollback after finalize: %v", err)
		}
		e.ack("old", move.WriteNew)
		tr := e.advance(move.Contracted)
		if len(tr.Steps) != 1 || !strings.Contains(tr.Steps[0].SQL[0], "DROP COLUMN") || hasColumn(t, db, "products", "price") {
			t.Fatalf("contract: %+v", tr)
		}
		if _, err := e.mg.Advance(e.ctx, e.m.Name, move.WriteNew); !errors.Is(err, dualwrite.ErrNotAdjacent) {
			t.Fatalf("back from contracted: %v", err)
		}
	})
}

func TestReadNewGateNamesWhatBlocks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 100, priceMove())
		e.register("a", 1, move.Legacy)
		e.register("c", 1, move.Legacy)
		e.advance(move.WriteBoth)
		e.ack("a", move.WriteBoth)
		_, err := e.mg.Advance(e.ctx, e.m.Name, move.ReadNew)
		bs := blockers(t, err)
		if kinds(bs) != "instances,backfill" || bs[0].Instances[0].ID != "c" {
			t.Fatalf("read-new with c on legacy: %v", err)
		}
		// The backfill itself refuses to start while c writes old only.
		if _, err := e.mg.Backfill(e.ctx, e.m.Name); kinds(blockers(t, err)) != "instances" {
			t.Fatalf("backfill with c on legacy: %v", err)
		}
		e.ack("c", move.WriteBoth)
		if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Advance(e.ctx, e.m.Name, move.ReadNew); kinds(blockers(t, err)) != "verify" {
			t.Fatalf("read-new before verify: %v", err)
		}
		// No registry: nothing can be known about instances, so it blocks.
		blind, err := dualwrite.New(e.ctx, db, []move.Move{e.m})
		if err != nil {
			t.Fatal(err)
		}
		if g, err := blind.Gate(e.ctx, e.m.Name, move.ReadNew); err != nil || g.Open || g.Blockers[0].Kind != dualwrite.BlockRegistry {
			t.Fatalf("gate without registry: %+v %v", g, err)
		}
	})
}

func TestRollback(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 300, priceMove())
		e.toWriteNew()
		// A backfill asked for at write-new names the way back first.
		_, err := e.mg.Backfill(e.ctx, e.m.Name)
		if bs := blockers(t, err); kinds(bs) != "backfill" || bs[0].NextCommand != "tandem moves advance price_cents --to read-new" || !strings.Contains(bs[0].Message, "--reverse") {
			t.Fatalf("backfill at write-new: %+v", bs)
		}
		r, err := dualwrite.NewRouter(e.m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		// Written new-only: old is now stale for key 5.
		if err := r.Write(e.ctx, db, move.WriteNew, int64(12345), 5); err != nil {
			t.Fatal(err)
		}
		e.advance(move.ReadNew)
		e.ack("a", move.ReadNew)
		e.ack("b", move.ReadNew)
		_, err = e.mg.Advance(e.ctx, e.m.Name, move.WriteBoth)
		if bs := blockers(t, err); kinds(bs) != "stale-old" || !strings.Contains(bs[0].Message, "--reverse") {
			t.Fatalf("back to write-both with stale old: %v", err)
		}
		if v, _ := r.Read(e.ctx, db, move.WriteBoth, 5); dualwrite.SameValue(v, 12345) {
			t.Fatal("old was not stale: the test proves nothing")
		}
		res, err := e.mg.Backfill(e.ctx, e.m.Name, dualwrite.WithReverse())
		if err != nil || !res.Complete || res.Op != "reverse-backfill" {
			t.Fatalf("reverse backfill: %+v %v", res, err)
		}
		if v, err := r.Read(e.ctx, db, move.WriteBoth, 5); err != nil || !dualwrite.SameValue(v, 12345) {
			t.Fatalf("old after the reverse backfill reads %v, %v", v, err)
		}
		e.advance(move.WriteBoth)
		e.ack("a", move.WriteBoth)
		e.ack("b", move.WriteBoth)
		// Forward again: the old backfill and verify still stand.
		e.advance(move.ReadNew)
		st := e.status()
		if len(st.History) != 6 || st.History[4].To != "write-both" || st.OldStale {
			t.Fatalf("history %+v stale %v", st.History, st.OldStale)
		}
	})
}

func TestBadInputWritesNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		ctx := context.Background()
		for name, m := range map[string]move.Move{
			"quote":     func() move.Move { m := priceMove(); m.Old = `price"--`; return m }(),
			"semicolon": func() move.Move { m := priceMove(); m.Table = "products;drop"; return m }(),
			"same":      func() move.Move { m := priceMove(); m.New.Column = "price"; return m }(),
		} {
			_, err := dualwrite.New(ctx, db, []move.Move{m})
			if !errors.Is(err, move.ErrInvalid) {
				t.Errorf("%s: %v", name, err)
			}
			if name != "same" && !errors.Is(err, dialect.ErrBadIdentifier) {
				t.Errorf("%s: %v is not ErrBadIdentifier", name, err)
			}
		}
		if ok, _ := sqldialect.Of(db).TableExists(ctx, db, dualwrite.MovesTable); ok {
			t.Fatal("an invalid declaration created the ledger")
		}
		e := newEnv(t, db, 10, priceMove())
		if _, err := e.mg.Advance(ctx, "nope", move.WriteBoth); !errors.Is(err, dualwrite.ErrUnknownMove) || !strings.Contains(err.Error(), "price_cents") {
			t.Fatalf("unknown move: %v", err)
		}
		for _, to := range []move.Phase{move.ReadNew, move.Contracted, move.Phase(9)} {
			if _, err := e.mg.Advance(ctx, e.m.Name, to); err == nil || errors.Is(err, dualwrite.ErrBlocked) {
				t.Fatalf("advance legacy -> %s: %v", to, err)
			}
		}
		// Where it stands already: nothing to do, and nothing done.
		if tr, err := e.mg.Advance(ctx, e.m.Name, move.Legacy); err != nil || !tr.Already || tr.Changed || len(e.status().History) != 0 {
			t.Fatalf("advance legacy -> legacy: %+v %v", tr, err)
		}
		if _, err := e.mg.Advance(ctx, e.m.Name, move.ReadNew); !errors.Is(err, dualwrite.ErrNotAdjacent) {
			t.Fatalf("skip a phase: %v", err)
		}
		if _, err := e.mg.Backfill(ctx, "nope"); !errors.Is(err, dualwrite.ErrUnknownMove) {
			t.Fatalf("backfill unknown: %v", err)
		}
		if _, err := e.mg.Backfill(ctx, e.m.Name); !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("backfill at legacy: %v", err)
		}
		if _, err := e.mg.Verify(ctx, e.m.Name); !errors.Is(err, dualwrite.ErrBlocked) {
			t.Fatalf("verify at legacy: %v", err)
		}
		if p := e.phase(); p != move.Legacy || hasColumn(t, db, "products", "price_cents") {
			t.Fatalf("bad input changed something: phase %s", p)
		}
		if n := e.count(`SELECT COUNT(*) FROM ` + dualwrite.StepsTable); n != 0 {
			t.Fatalf("%d steps logged", n)
		}
		// A move whose new column has no type and does not exist: bad
		// input, refused with the reason before anything is recorded.
		m := priceMove()
		m.Name, m.New.Type = "untyped", move.ColumnType{}
		_, err := dualwrite.New(ctx, db, []move.Move{m})
		if !errors.Is(err, move.ErrNoColumn) || !strings.Contains(err.Error(), "New.Type") {
			t.Fatalf("untyped: %v", err)
		}
		if n := e.count(`SELECT COUNT(*) FROM ` + dualwrite.MovesTable + ` WHERE name = 'untyped'`); n != 0 {
			t.Fatalf("the refused move has %d ledger rows", n)
		}
	})
}

func TestDryRunAndStepLog(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 10, priceMove())
		tr, err := e.mg.Advance(e.ctx, e.m.Name, move.WriteBoth, dualwrite.WithDryRun())
		if err != nil || !tr.DryRun || tr.Done || len(tr.Steps) != 1 || !strings.Contains(tr.Steps[0].SQL[0], "ADD COLUMN") {
			t.Fatalf("dry run: %+v %v", tr, err)
		}
		if e.phase() != move.Legacy || hasColumn(t, db, "products", "price_cents") || e.count(`SELECT COUNT(*) FROM `+dualwrite.StepsTable) != 0 {
			t.Fatal("the dry run changed something")
		}
		// An interrupted run: the step was proposed and its DDL ran, but
		// it was never marked applied (MySQL commits DDL on its own).
		e.exec(`INSERT INTO ` + dualwrite.StepsTable + ` (id, move, app_release, description, proposed_at, sql_text) VALUES ('price_cents/write-both/1-add-column', 'price_cents', 0, 'add column', '2026-01-01 00:00:00', '')`)
		e.exec(`ALTER TABLE products ADD COLUMN price_cents BIGINT`)
		if st := e.status(); len(st.Interrupted) != 1 {
			t.Fatalf("status does not report the interrupted step: %+v", st.Steps)
		}
		tr = e.advance(move.WriteBoth)
		if s := tr.Steps[0]; !s.Healed || !s.Skipped {
			t.Fatalf("interrupted step: %+v", s)
		}
		st := e.status()
		if len(st.Interrupted) != 0 || len(st.Steps) != 1 || st.Steps[0].AppliedAt == nil {
			t.Fatalf("step log after healing: %+v", st.Steps)
		}
	})
}

func TestConcurrentAdvanceIsSerialized(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 10, priceMove())
		var wg sync.WaitGroup
		errs := make([]error, 4)
		trs := make([]dualwrite.Transition, len(errs))
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				mg, err := dualwrite.New(e.ctx, db, []move.Move{e.m}, dualwrite.WithRegistry(e.reg))
				if err == nil {
					trs[i], err = mg.Advance(e.ctx, e.m.Name, move.WriteBoth)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		changed, already := 0, 0
		for i, err := range errs {
			switch {
			case err != nil:
				t.Errorf("concurrent advance: %v", err)
			case trs[i].Changed:
				changed++
			case trs[i].Already:
				already++
			}
		}
		if changed != 1 || already != len(errs)-1 || len(e.status().History) != 1 {
			t.Fatalf("%d runners advanced, %d found it done", changed, already)
		}
	})
}

func hasColumn(t *testing.T, db *dialect.DB, table, col string) bool {
	t.Helper()
	cols, err := sqldialect.Of(db).Columns(context.Background(), db, table)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		if strings.EqualFold(c.Name, col) {
			return true
		}
	}
	return false
}

// TestEveryGateListsInstancesInOneOrder: the transition gates, the
// backfill both ways and finalize all name the instances they wait for in
// the same order (by id), whatever order the registry lists them in (by
// service, then id).
func TestEveryGateListsInstancesInOneOrder(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		e := newEnv(t, db, 20, priceMove())
		ids := []string{"c", "a", "b"} // services api, web, db: the registry lists c, b, a
		for i, id := range ids {
			svc := []string{"api", "web", "db"}[i]
			if err := e.reg.Register(e.ctx, services.Instance{ID: id, Service: svc, Host: "h-" + id, Release: 1}); err != nil {
				t.Fatal(err)
			}
		}
		ackAll := func(p move.Phase) {
			for _, id := range ids {
				e.ack(id, p)
			}
		}
		check := func(what string, err error) {
			t.Helper()
			bs := blockers(t, err)
			var got []string
			for _, b := range bs {
				if b.Kind != dualwrite.BlockInstances {
					continue
				}
				for _, in := range b.Instances {
					got = append(got, in.ID)
				}
				// The message names them in the same order.
				ia, ib, ic := strings.Index(b.Message, "a (web"), strings.Index(b.Message, "b (db"), strings.Index(b.Message, "c (api")
				if ia < 0 || ia > ib || ib > ic {
					t.Errorf("%s: message order: %s", what, b.Message)
				}
				if strings.Contains(b.Message, "upgrade or restart") && !strings.Contains(b.Message, "(tandem services delete a; tandem services delete b; tandem services delete c)") {
					t.Errorf("%s: no exact commands: %s", what, b.Message)
				}
			}
			if strings.Join(got, ",") != "a,b,c" {
				t.Errorf("%s: instances %v, want a,b,c (%v)", what, got, err)
			}
		}
		e.advance(move.WriteBoth)
		_, err := e.mg.Advance(e.ctx, e.m.Name, move.ReadNew)
		check("write-both -> read-new", err)
		_, err = e.mg.Backfill(e.ctx, e.m.Name)
		check("backfill", err)
		ackAll(move.WriteBoth)
		if _, err := e.mg.Backfill(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		e.advance(move.ReadNew)
		ackAll(move.ReadNew)
		e.advance(move.WriteNew)
		_, err = e.mg.Finalize(e.ctx, e.m.Name, "")
		check("finalize", err)
		_, err = e.mg.Advance(e.ctx, e.m.Name, move.ReadNew)
		check("write-new -> read-new", err)
		ackAll(move.WriteNew)
		e.advance(move.ReadNew) // rows may be new only: old is stale
		_, err = e.mg.Backfill(e.ctx, e.m.Name, dualwrite.WithReverse())
		check("reverse backfill", err)
	})
}

func TestInstanceBlockersNameMissingAndErrorInstancesInOrder(t *testing.T) {
	snap := services.Snapshot{Instances: []services.Instance{
		{ID: "c", Service: "api", Host: "h3", Release: 4, State: services.StateMissing},
		{ID: "b", Service: "db", Host: "h2", Release: 4, State: services.StateUp},
		{ID: "a", Service: "web", Host: "h1", Release: 3, State: services.StateError},
	}}
	var got []string
	for _, b := range dualwrite.InstanceBlockers(snap) {
		got = append(got, b.Instances[0].ID)
		if !strings.Contains(b.Message, "tandem services delete "+b.Instances[0].ID) {
			t.Errorf("no command in %q", b.Message)
		}
	}
	if strings.Join(got, ",") != "a,c" {
		t.Fatalf("blockers for %v, want a,c", got)
	}
}
