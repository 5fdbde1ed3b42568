package dualwrite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	histories "github.com/tandem-go/tandem/internal/history"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/tandemtest"
)

// priceMove moves products.price (a decimal) to products.price_cents (an
// integer), with both a SQL and a Go transform each way.
func priceMove() move.Move {
	return move.Move{
		Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New: move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "BIGINT"}},
		Forward: move.Transform{
			SQL: "CAST(ROUND({value} * 100) AS BIGINT)",
			Dialects: map[dialect.Name]string{
				dialect.MySQL:  "CAST(ROUND({value} * 100) AS SIGNED)",
				dialect.SQLite: "CAST(ROUND({value} * 100) AS INTEGER)",
			},
			Go: func(v any) (any, error) {
				if v == nil {
					return nil, nil
				}
				f, err := strconv.ParseFloat(fmt.Sprint(v), 64)
				if err != nil {
					return nil, err
				}
				return int64(f*100 + 0.5), nil
			},
		},
		Backward: move.Transform{
			SQL: "{value} / 100.0",
			Go: func(v any) (any, error) {
				if v == nil {
					return nil, nil
				}
				n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
				if err != nil {
					return nil, err
				}
				return fmt.Sprintf("%d.%02d", n/100, n%100), nil
			},
		},
	}
}

// propsMove is the OpenStack Heat case: resource properties moved into a
// table of their own, keyed by the resource.
func propsMove() move.Move {
	return move.Move{
		Name: "resource_props", Table: "resource", Key: []string{"id"}, Old: "properties",
		New: move.Target{Table: "resource_properties_data", Column: "data", Key: []string{"resource_id"},
			Type: move.ColumnType{SQL: "TEXT"}, KeyType: []move.ColumnType{{SQL: "BIGINT"}}},
	}
}

// ledger of what writers wrote, per key, so readers can tell a wrong read
// from a stale-but-legal one and the end can tell a lost write.
type history struct {
	mu     sync.Mutex
	values map[int64][]int64
	locks  sync.Map // int64 -> *sync.Mutex: one writer per key at a time
}

// lockKey serializes the writers of one key (tandemtest runs two copies of
// the old release's code at once), so the order values are recorded in is
// the order they commit in.
func (h *history) lockKey(k int64) func() {
	m, _ := h.locks.LoadOrStore(k, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (h *history) add(k, v int64) {
	h.mu.Lock()
	h.values[k] = append(h.values[k], v)
	h.mu.Unlock()
}

func (h *history) last(k int64) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	vs := h.values[k]
	if len(vs) == 0 {
		return 0, false
	}
	return vs[len(vs)-1], true
}

func (h *history) has(k, v int64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.values[k], v)
}

func (h *history) keys() []int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int64
	for k := range h.values {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

type scenario struct {
	m       move.Move
	create  []string
	insert  string          // inserts a row with only its key (and other columns)
	encode  func(int64) any // new-form value written for v
	decode  func(any) (int64, error)
	seed    int64
	perSide int64 // keys each writer owns
}

func samePrice() scenario {
	return scenario{
		m:      priceMove(),
		create: []string{`CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,2))`},
		insert: `INSERT INTO products (id, name) VALUES (?, 'p')`,
		encode: func(v int64) any { return v },
		decode: func(x any) (int64, error) { return strconv.ParseInt(fmt.Sprint(x), 10, 64) },
		seed:   300, perSide: 40,
	}
}

func crossProps() scenario {
	return scenario{
		m:      propsMove(),
		create: []string{`CREATE TABLE resource (id BIGINT PRIMARY KEY, stack VARCHAR(50), properties TEXT)`},
		insert: `INSERT INTO resource (id, stack) VALUES (?, 's')`,
		encode: func(v int64) any { return fmt.Sprintf(`{"size": %d}`, v) },
		decode: func(x any) (int64, error) {
			s := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(x), `{"size": `), "}")
			return strconv.ParseInt(s, 10, 64)
		},
		seed: 300, perSide: 40,
	}
}

// lifecycle walks s through every phase with tandemtest; the old and new
// release each own a set of keys, write them (updates and inserts), and
// read the other side's keys, asserting every read is a value that was
// written and, at the end of each boundary, that the last write of every
// key reads back on both sides. Every write and read, with its call and
// return times, goes into each key's history, which must be linearizable
// once the walk is over: no read, at any phase of either release, saw a
// value older than one already written.
func lifecycle(t *testing.T, db *dialect.DB, s scenario) []tandemtest.Boundary {
	h := &history{values: map[int64][]int64{}}
	ops := histories.NewRecorder()
	keyOf := func(k int64) string { return fmt.Sprintf("%s/%d", s.m.Table, k) }
	r, err := dualwrite.NewRouter(s.m, db.Engine())
	if err != nil {
		t.Fatal(err)
	}
	var nextInsert struct {
		sync.Mutex
		n int64
	}
	nextInsert.n = 100000
	writeValue := func(ctx context.Context, db *dialect.DB, p move.Phase, k, v int64, insert bool) (err error) {
		defer h.lockKey(k)()
		call := time.Now()
		defer func() {
			o := histories.Applied
			if err != nil {
				o = histories.Unknown
			}
			ops.Write(client(ctx), keyOf(k), v, call, time.Now(), o)
		}()
		tx, err := db.BeginTxx(ctx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck
		if insert {
			if _, err := tx.ExecContext(ctx, tx.Rebind(s.insert), k); err != nil {
				return err
			}
		}
		h.add(k, v) // before the write: a concurrent reader may see it from now on
		if err := r.Write(ctx, tx, p, s.encode(v), k); err != nil {
			return err
		}
		return tx.Commit()
	}
	read := func(ctx context.Context, db *dialect.DB, p move.Phase, k int64) (int64, bool, error) {
		call := time.Now()
		x, err := r.Read(ctx, db, p, k)
		if err != nil {
			return 0, false, err
		}
		if x == nil {
			ops.Read(client(ctx), keyOf(k), nil, false, call, time.Now())
			return 0, false, nil
		}
		v, err := s.decode(x)
		if err == nil {
			ops.Read(client(ctx), keyOf(k), v, true, call, time.Now())
		}
		return v, true, err
	}
	code := func(side int64) tandemtest.Code {
		return func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
			ctx = context.WithValue(ctx, clientKey{}, int(side))
			rng := rand.New(rand.NewPCG(uint64(side), rand.Uint64()))
			for range 15 {
				k := side*1000 + rng.Int64N(s.perSide)
				v := rng.Int64N(1_000_000)
				if err := writeValue(ctx, db, p, k, v, false); err != nil {
					t.Errorf("%s: write key %d at %s: %v", s.m.Name, k, p, err)
					return
				}
				// Read a key of the other side.
				o := (3-side)*1000 + rng.Int64N(s.perSide)
				got, ok, err := read(ctx, db, p, o)
				if err != nil {
					t.Errorf("%s: read key %d at %s: %v", s.m.Name, o, p, err)
					return
				}
				if !ok || !h.has(o, got) {
					t.Errorf("%s: read key %d at %s: got %d (present %v), never written", s.m.Name, o, p, got, ok)
				}
			}
			nextInsert.Lock()
			nextInsert.n++
			k := nextInsert.n
			nextInsert.Unlock()
			if err := writeValue(ctx, db, p, k, k%997, true); err != nil {
				t.Errorf("%s: insert key %d at %s: %v", s.m.Name, k, p, err)
			}
		}
	}
	setup := func(ctx context.Context, t testing.TB, db *dialect.DB) {
		for _, q := range s.create {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		// Seed as the legacy release does: old only.
		for k := int64(1); k <= s.seed; k++ {
			if err := writeValue(ctx, db, move.Legacy, k, k*7, true); err != nil {
				t.Fatal(err)
			}
		}
		for _, side := range []int64{1, 2} {
			for i := range s.perSide {
				k := side*1000 + i
				if err := writeValue(ctx, db, move.Legacy, k, k, true); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	check := func(ctx context.Context, t testing.TB, db *dialect.DB, p move.Phase) {
		phases := []move.Phase{p}
		if prev, ok := p.Prev(); ok {
			phases = append(phases, prev)
		}
		for _, k := range h.keys() {
			want, _ := h.last(k)
			for _, q := range phases {
				got, ok, err := read(ctx, db, q, k)
				if err != nil || !ok || got != want {
					t.Errorf("%s after entering %s: key %d read at %s = %d (present %v, err %v), last written %d: a write was lost", s.m.Name, p, k, q, got, ok, err, want)
					return
				}
			}
		}
	}
	bs := tandemtest.Run(t, db, tandemtest.Case{Move: s.m, Setup: setup, Old: code(1), New: code(2), Check: check,
		Backfill: []dualwrite.Option{dualwrite.WithBatchSize(50, 10, 0)}})
	rep := ops.Check(histories.CheckOptions{})
	for _, f := range rep.Failures {
		t.Errorf("%s: %v", s.m.Name, f)
	}
	if !rep.Linearizable() || rep.Keys == 0 {
		t.Fatalf("%s: %d key histories (%d operations): %d not linearizable, %d undecided %v", s.m.Name, rep.Keys, rep.Ops, len(rep.Failures), len(rep.Undecided), rep.Undecided)
	}
	t.Logf("%s: %d key histories, %d operations, linearizable", s.m.Name, rep.Keys, rep.Ops)
	return bs
}

// clientKey carries, in a context, which release's code (1 old, 2 new; 0
// setup and checks) an operation of the history came from.
type clientKey struct{}

func client(ctx context.Context) int {
	n, _ := ctx.Value(clientKey{}).(int)
	return n
}

func TestLifecycleSameTable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		bs := lifecycle(t, db, samePrice())
		if len(bs) != 4 {
			t.Fatalf("walked %d boundaries, want 4", len(bs))
		}
		assertContracted(t, db, "products", "price", "price_cents")
		if bs[1].Backfill == nil || bs[1].Backfill.Batches < 2 {
			t.Errorf("backfill before read-new ran %+v, want several batches", bs[1].Backfill)
		}
	})
}

func TestLifecycleCrossTable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		lifecycle(t, db, crossProps())
		assertContracted(t, db, "resource", "properties", "")
		cols, err := sqldialect.Of(db).Columns(context.Background(), db, "resource_properties_data")
		if err != nil || len(cols) != 2 {
			t.Fatalf("new table columns %v, %v", cols, err)
		}
	})
}

func assertContracted(t *testing.T, db *dialect.DB, table, gone, kept string) {
	t.Helper()
	cols, err := sqldialect.Of(db).Columns(context.Background(), db, table)
	if err != nil {
		t.Fatal(err)
	}
	has := func(c string) bool {
		return slices.ContainsFunc(cols, func(x sqldialect.Column) bool { return strings.EqualFold(x.Name, c) })
	}
	if has(gone) {
		t.Errorf("contracted, but %s.%s still exists", table, gone)
	}
	if kept != "" && !has(kept) {
		t.Errorf("contracted, but %s.%s is missing", table, kept)
	}
}
