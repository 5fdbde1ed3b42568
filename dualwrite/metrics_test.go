package dualwrite_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/promreg"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/services"
)

// TestMetrics checks each dualwrite metric against the ledger and the
// registry on every engine, through a move's first steps: the phase, the
// next gate and its blockers by kind as instances lag and the backfill
// and verify run, backfill progress and the batches that made it, and the
// phase a tracker acts on.
func TestMetrics(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		pr := prometheus.NewPedanticRegistry()
		e := newEnv(t, db, 300, priceMove(), dualwrite.WithMetrics(pr))
		value := func(name string, labels ...string) (float64, bool) {
			return promreg.Value(pr, name, labels...)
		}
		want := func(name string, w float64, labels ...string) {
			t.Helper()
			if got, ok := value(name, labels...); !ok || got != w {
				t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, w)
			}
		}
		absent := func(name string, labels ...string) {
			t.Helper()
			if got, ok := value(name, labels...); ok {
				t.Errorf("%s%v = %v, want none", name, labels, got)
			}
		}
		mv := "move=price_cents"
		want("tandem_dualwrite_ledger_up", 1)
		want("tandem_dualwrite_phase", 0, mv)
		want("tandem_dualwrite_gate_open", 1, mv, "to=write-both")
		absent("tandem_dualwrite_blockers", mv)
		absent("tandem_dualwrite_verify_mismatches", mv)

		e.register("a", 1, move.Legacy)
		e.register("c", 1, move.Legacy)
		e.advance(move.WriteBoth)
		e.ack("a", move.WriteBoth)
		want("tandem_dualwrite_phase", 1, mv)
		want("tandem_dualwrite_gate_open", 0, mv, "to=read-new")
		want("tandem_dualwrite_blockers", 1, mv, "kind=instances")
		want("tandem_dualwrite_blockers", 1, mv, "kind=backfill")
		want("tandem_dualwrite_backfill_rows_done", 0, mv, "direction=backfill")

		// c catches up and the backfill runs in batches of 100.
		e.ack("c", move.WriteBoth)
		res, err := e.mg.Backfill(e.ctx, e.m.Name, dualwrite.WithBatchSize(100, 100, 100))
		if err != nil {
			t.Fatal(err)
		}
		absent("tandem_dualwrite_blockers", mv, "kind=instances")
		absent("tandem_dualwrite_blockers", mv, "kind=backfill")
		want("tandem_dualwrite_blockers", 1, mv, "kind=verify")
		want("tandem_dualwrite_backfill_rows_done", 300, mv, "direction=backfill")
		want("tandem_dualwrite_backfill_rows_total", 300, mv, "direction=backfill")
		want("tandem_dualwrite_failed_rows", 0, mv)
		want("tandem_dualwrite_batch_seconds", float64(res.Batches), mv, "op=backfill")
		want("tandem_dualwrite_backfill_rows_processed_total", 300, mv, "op=backfill")
		if r, _ := value("tandem_dualwrite_backfill_rows_per_second", mv, "op=backfill"); r <= 0 {
			t.Errorf("rows per second = %v, want above 0", r)
		}

		// Verify finds one row changed behind the move's back.
		e.exec(`UPDATE products SET price_cents = 1 WHERE id = 7`)
		if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		want("tandem_dualwrite_verify_mismatches", 1, mv)
		want("tandem_dualwrite_blockers", 1, mv, "kind=mismatches")
		e.exec(`UPDATE products SET price_cents = 700 + 7 WHERE id = 7`)
		if _, err := e.mg.Verify(e.ctx, e.m.Name); err != nil {
			t.Fatal(err)
		}
		want("tandem_dualwrite_verify_mismatches", 0, mv)
		want("tandem_dualwrite_gate_open", 1, mv, "to=read-new")
		absent("tandem_dualwrite_blockers", mv)

		// A tracker of this build acts on the ledger's write-both.
		tr, err := dualwrite.NewTracker(e.ctx, db, 1, []move.Move{e.m}, dualwrite.WithMetrics(pr))
		if err != nil {
			t.Fatal(err)
		}
		want("tandem_dualwrite_acting_phase", float64(tr.Phase(e.m.Name)), mv)
		if tr.Phase(e.m.Name) != move.WriteBoth {
			t.Errorf("tracker acts on %s, want write-both", tr.Phase(e.m.Name))
		}

		// A write freeze: the move frozen, instances a and c not yet
		// acknowledging it, the tracker's refusals counted.
		want("tandem_dualwrite_writes_frozen", 0, mv)
		st, err := e.mg.Freeze(e.ctx, dualwrite.FreezeScope{Moves: []string{e.m.Name}}, "restore")
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Refresh(e.ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tr.BeginWrite(e.m.Name); !errors.Is(err, dualwrite.ErrFrozen) {
			t.Fatalf("a write while frozen: %v", err)
		}
		want("tandem_dualwrite_writes_frozen", 1, mv)
		want("tandem_dualwrite_freeze_unacknowledged", 2)
		want("tandem_dualwrite_writes_refused_total", 1, mv)
		want("tandem_dualwrite_freeze_acknowledged", float64(st.Seq))
		for _, id := range []string{"a", "c"} {
			if err := e.reg.Heartbeat(e.ctx, id, services.Heartbeat{Freeze: tr.FreezeAck()}); err != nil {
				t.Fatal(err)
			}
		}
		want("tandem_dualwrite_freeze_unacknowledged", 0)
	})
}

// TestMetricsFailedRows: rows a Go transform refuses are counted from the
// ledger and block read-new by kind; a ledger that cannot be read says so
// in tandem_dualwrite_ledger_up.
func TestMetricsFailedRows(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		m := priceMove()
		// A Go-only transform that refuses prices ending in .13.
		m.Forward = move.Transform{Go: func(v any) (any, error) {
			f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
			if err != nil {
				return nil, err
			}
			if c := int64(f*100 + 0.5); c%100 != 13 {
				return c, nil
			}
			return nil, fmt.Errorf("unlucky price %v", v)
		}}
		pr := prometheus.NewPedanticRegistry()
		e := newEnv(t, db, 500, m, dualwrite.WithMetrics(pr))
		e.toWriteBoth()
		if _, err := e.mg.Backfill(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		if _, err := e.mg.Verify(e.ctx, m.Name); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			want   float64
			labels []string
		}{
			{"tandem_dualwrite_failed_rows", 5, []string{"move=price_cents"}},
			{"tandem_dualwrite_blockers", 1, []string{"move=price_cents", "kind=failed-rows"}},
			{"tandem_dualwrite_backfill_rows_processed_total", 500, []string{"move=price_cents", "op=backfill"}},
			{"tandem_dualwrite_ledger_up", 1, nil},
		} {
			if got, ok := promreg.Value(pr, c.name, c.labels...); !ok || got != c.want {
				t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}
		db.Close()
		if got, _ := promreg.Value(pr, "tandem_dualwrite_ledger_up"); got != 0 {
			t.Errorf("ledger_up = %v with the database closed, want 0", got)
		}
		if _, ok := promreg.Value(pr, "tandem_dualwrite_phase"); ok {
			t.Error("a phase is reported without a ledger to read it from")
		}
	})
}

// TestMetricsReverseBackfill: after a rollback from write-new, the reverse
// backfill's progress and batches are reported by direction and op, apart
// from the forward backfill's.
func TestMetricsReverseBackfill(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		pr := prometheus.NewPedanticRegistry()
		e := newEnv(t, db, 300, priceMove(), dualwrite.WithMetrics(pr))
		want := func(name string, w float64, labels ...string) {
			t.Helper()
			if got, ok := promreg.Value(pr, name, labels...); !ok || got != w {
				t.Errorf("%s%v = %v (found %v), want %v", name, labels, got, ok, w)
			}
		}
		mv, rev := "move=price_cents", "direction=reverse-backfill"
		e.toWriteNew()
		if v, ok := promreg.Value(pr, "tandem_dualwrite_backfill_rows_done", mv, rev); ok && v != 0 {
			t.Errorf("reverse backfill rows done before any rollback = %v, want none or 0", v)
		}
		r, err := dualwrite.NewRouter(e.m, db.Engine())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Write(e.ctx, db, move.WriteNew, int64(12345), 5); err != nil {
			t.Fatal(err)
		}
		e.advance(move.ReadNew)
		e.ack("a", move.ReadNew)
		e.ack("b", move.ReadNew)
		want("tandem_dualwrite_phase", 2, mv)
		res, err := e.mg.Backfill(e.ctx, e.m.Name, dualwrite.WithReverse(), dualwrite.WithBatchSize(100, 100, 100))
		if err != nil || !res.Complete {
			t.Fatalf("reverse backfill: %+v %v", res, err)
		}
		want("tandem_dualwrite_backfill_rows_done", 300, mv, rev)
		want("tandem_dualwrite_backfill_rows_total", 300, mv, rev)
		want("tandem_dualwrite_backfill_rows_done", 300, mv, "direction=backfill")
		want("tandem_dualwrite_backfill_rows_processed_total", 300, mv, "op=reverse-backfill")
		want("tandem_dualwrite_batch_seconds", float64(res.Batches), mv, "op=reverse-backfill")
	})
}
