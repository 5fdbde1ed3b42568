package dualwrite_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// env is a database with a products table, the registry and a Manager.
type env struct {
	t   *testing.T
	ctx context.Context
	db  *dialect.DB
	reg *services.Registry
	mg  *dualwrite.Manager
	m   move.Move
}

func newEnv(t *testing.T, db *dialect.DB, rows int, m move.Move, opts ...dualwrite.Option) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, ctx: ctx, db: db, m: m}
	e.exec(`CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,2))`)
	e.seed(1, rows)
	if _, err := schema.Ensure(ctx, db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		t.Fatal(err)
	}
	reg, err := services.New(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	e.reg = reg
	mg, err := dualwrite.New(ctx, db, []move.Move{m}, append([]dualwrite.Option{dualwrite.WithRegistry(reg)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e.mg = mg
	return e
}

func (e *env) exec(q string, args ...any) {
	e.t.Helper()
	if _, err := e.db.ExecContext(e.ctx, e.db.Rebind(q), args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
}

// seed inserts rows from..to in one multi-row statement per thousand.
func (e *env) seed(from, to int) {
	e.t.Helper()
	for lo := from; lo <= to; lo += 1000 {
		hi := min(to, lo+999)
		q := "INSERT INTO products (id, name, price) VALUES "
		var args []any
		for i := lo; i <= hi; i++ {
			if i > lo {
				q += ", "
			}
			q += "(?, 'p', ?)"
			args = append(args, i, fmt.Sprintf("%d.%02d", i%1000, i%100))
		}
		e.exec(q, args...)
	}
}

func (e *env) register(id string, release int64, p move.Phase) {
	e.t.Helper()
	if err := e.reg.Register(e.ctx, services.Instance{ID: id, Service: "shop", Host: "h-" + id, Release: release, Phases: map[string]string{e.m.Name: p.String()}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) ack(id string, p move.Phase) {
	e.t.Helper()
	if err := e.reg.Heartbeat(e.ctx, id, services.Heartbeat{Phases: map[string]string{e.m.Name: p.String()}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) advance(to move.Phase) dualwrite.Transition {
	e.t.Helper()
	tr, err := e.mg.Advance(e.ctx, e.m.Name, to)
	if err != nil {
		e.t.Fatalf("advance to %s: %v", to, err)
	}
	return tr
}

func (e *env) phase() move.Phase {
	e.t.Helper()
	p, err := e.mg.Phase(e.ctx, e.m.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) status() dualwrite.MoveStatus {
	e.t.Helper()
	st, err := e.mg.Status(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Moves[0]
}

// toWriteBoth advances to write-both with one instance "a" acting on it.
func (e *env) toWriteBoth() {
	e.t.Helper()
	e.register("a", 1, move.Legacy)
	e.advance(move.WriteBoth)
	e.ack("a", move.WriteBoth)
}

func (e *env) count(q string, args ...any) int64 {
	e.t.Helper()
	var n int64
	if err := e.db.GetContext(e.ctx, &n, e.db.Rebind(q), args...); err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// ensureLedger creates tandem's tables, as `tandem schema ensure` does:
// no constructor creates them.
func ensureLedger(t testing.TB, db *dialect.DB) {
	t.Helper()
	if _, err := schema.Ensure(context.Background(), db, append(services.Tables(), dualwrite.Tables()...)); err != nil {
		t.Fatal(err)
	}
}
