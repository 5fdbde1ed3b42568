package dualwrite_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/move"
)

// BenchmarkFragments compares reading and writing a moved column through
// the fragment path with the same statement written without tandem, per
// engine (PostgreSQL and MariaDB when their variables are set): every
// iteration runs both, interleaved, and the benchmark reports each side's
// median time and their ratio (tandem/plain-p50; ns/op is both together).
//
// read: SELECT name, <moved> FROM products WHERE id = ? at read-new (the
// statement kept per phase by Router.Statement), against the SELECT naming
// price_cents. write: UPDATE products SET name = ?, <moved> WHERE id = ?
// at read-new, which writes old and new (Fragments.Clauses), against the
// UPDATE naming both columns. read_built and write_built: the same
// statements built per call from Router.Select, Router.Set and Args.
// read_value and write_value: ReadValue and WriteValue against the
// one-column statements they amount to.
func BenchmarkFragments(b *testing.B) {
	for _, e := range dbtest.Engines {
		b.Run("engine="+string(e.Name), func(b *testing.B) {
			db := dbtest.Open(b, e.Name)
			benchFragments(b, db)
		})
	}
}

func benchFragments(b *testing.B, db *dialect.DB) {
	ctx := context.Background()
	const rows = 1000
	if _, err := db.ExecContext(ctx, `CREATE TABLE products (id BIGINT PRIMARY KEY, name VARCHAR(50), price DECIMAL(12,2), price_cents BIGINT)`); err != nil {
		b.Fatal(err)
	}
	for lo := 1; lo <= rows; lo += 100 {
		q := "INSERT INTO products (id, name, price, price_cents) VALUES "
		var args []any
		for id := lo; id < lo+100; id++ {
			if id > lo {
				q += ", "
			}
			q += "(?, 'item', ?, ?)"
			args = append(args, id, float64(id)/100, id)
		}
		if _, err := db.ExecContext(ctx, db.Rebind(q), args...); err != nil {
			b.Fatal(err)
		}
	}
	m := priceMove()
	m.Forward.Go, m.Backward.Go = nil, nil // SQL transforms: the same statement text on both sides
	r, err := dualwrite.NewRouter(m, db.Engine())
	if err != nil {
		b.Fatal(err)
	}
	backward, err := m.Backward.Render(db.Engine(), "?")
	if err != nil {
		b.Fatal(err)
	}
	p := move.ReadNew
	plainRead := db.Rebind(`SELECT name, price_cents FROM products WHERE id = ?`)
	plainWrite := db.Rebind(`UPDATE products SET name = ?, price = ` + backward + `, price_cents = ? WHERE id = ?`)
	plainValue := db.Rebind(`SELECT products.price_cents FROM products WHERE products.id = ?`)
	plainSet := db.Rebind(`UPDATE products SET price = ` + backward + `, price_cents = ? WHERE id = ?`)
	pool := db.DB() // *sql.DB: what an application holds
	id := func(i int) int64 { return int64(i%rows) + 1 }

	// Each iteration runs the plain statement and the tandem one, in an
	// order that alternates, each timed on its own: both sides meet the
	// same load, which on a shared machine moves far more than 5% within
	// a second. The ratio of their medians is the figure.
	pair := func(op string, plain, tandem func(i int) error) {
		b.Run("op="+op, func(b *testing.B) {
			var tp, tt []time.Duration
			for i := 0; b.Loop(); i++ {
				first, second, d1, d2 := plain, tandem, &tp, &tt
				if i%2 == 1 {
					first, second, d1, d2 = tandem, plain, &tt, &tp
				}
				start := time.Now()
				if err := first(i); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := second(i); err != nil {
					b.Fatal(err)
				}
				*d1 = append(*d1, mid.Sub(start))
				*d2 = append(*d2, time.Since(mid))
			}
			p, t := median(tp), median(tt)
			b.ReportMetric(float64(p.Nanoseconds()), "plain-p50-ns")
			b.ReportMetric(float64(t.Nanoseconds()), "tandem-p50-ns")
			b.ReportMetric(float64(t)/float64(p), "tandem/plain-p50")
		})
	}
	var name string
	var cents int64
	// The hot path: the statement kept per phase (Router.Statement), each
	// call binding its values.
	get := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		sel, err := f.Select("")
		return `SELECT name, ` + sel.Expr + ` FROM products` + sel.Join + ` WHERE id = ` + f.Arg(), err
	})
	put := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		return `UPDATE products SET name = ` + f.Arg() + `, ` + f.Clauses() + ` WHERE id = ` + f.Arg(), nil
	})
	pair("read", func(i int) error {
		return pool.QueryRowContext(ctx, plainRead, id(i)).Scan(&name, &cents)
	}, func(i int) error {
		q, err := get.Query(p, id(i))
		if err != nil {
			return err
		}
		return pool.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&name, dualwrite.Into(q.Select, &cents))
	})
	pair("write", func(i int) error {
		v := int64(i % 100000)
		_, err := pool.ExecContext(ctx, plainWrite, "item", v, v, id(i))
		return err
	}, func(i int) error {
		w, err := put.Exec(p, int64(i%100000), "item", id(i))
		if err != nil {
			return err
		}
		_, err = pool.ExecContext(ctx, w.SQL, w.Args...)
		return err
	})
	// The same statements built per call from the fragments.
	pair("read_built", func(i int) error {
		return pool.QueryRowContext(ctx, plainRead, id(i)).Scan(&name, &cents)
	}, func(i int) error {
		sel, err := r.Select(p, "")
		if err != nil {
			return err
		}
		a := r.Args()
		return pool.QueryRowContext(ctx, `SELECT name, `+sel.Expr+` FROM products`+sel.Join+` WHERE id = `+a.Bind(id(i)), a.Values()...).
			Scan(&name, dualwrite.Into(sel, &cents))
	})
	pair("write_built", func(i int) error {
		v := int64(i % 100000)
		_, err := pool.ExecContext(ctx, plainWrite, "item", v, v, id(i))
		return err
	}, func(i int) error {
		set, err := r.Set(p, int64(i%100000))
		if err != nil {
			return err
		}
		a := r.Args()
		_, err = pool.ExecContext(ctx, `UPDATE products SET name = `+a.Bind("item")+`, `+set.Clauses(a)+` WHERE id = `+a.Bind(id(i)), a.Values()...)
		return err
	})
	pair("read_value", func(i int) error {
		return pool.QueryRowContext(ctx, plainValue, id(i)).Scan(&cents)
	}, func(i int) error {
		var err error
		cents, err = dualwrite.ReadValue[int64](ctx, pool, r, p, id(i))
		return err
	})
	pair("write_value", func(i int) error {
		v := int64(i % 100000)
		res, err := pool.ExecContext(ctx, plainSet, v, v, id(i))
		if err == nil {
			_, err = res.RowsAffected() // WriteValue checks the row was there
		}
		return err
	}, func(i int) error {
		return dualwrite.WriteValue(ctx, pool, r, p, int64(i%100000), id(i))
	})
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkFragmentsOwnWork is the fragment path's own work per call, with
// no database: what BenchmarkFragments' tandem side adds to the plain
// statement besides the statement's text (run with -benchmem). read: the
// kept statement's Query and Into's scan of the value; write: the kept
// statement's Exec; read_built and write_built: the statements built per
// call; plain_args: the arguments of the plain statement, as a call
// passes them (the plain side's own allocation).
func BenchmarkFragmentsOwnWork(b *testing.B) {
	m := priceMove()
	m.Forward.Go, m.Backward.Go = nil, nil
	r, err := dualwrite.NewRouter(m, dialect.SQLite)
	if err != nil {
		b.Fatal(err)
	}
	p := move.ReadNew
	get := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		sel, err := f.Select("")
		return `SELECT name, ` + sel.Expr + ` FROM products` + sel.Join + ` WHERE id = ` + f.Arg(), err
	})
	put := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		return `UPDATE products SET name = ` + f.Arg() + `, ` + f.Clauses() + ` WHERE id = ` + f.Arg(), nil
	})
	var cents int64
	var sink []any
	var text string
	b.Run("op=read", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			q, err := get.Query(p, int64(i))
			if err != nil {
				b.Fatal(err)
			}
			if err := dualwrite.Into(q.Select, &cents).Scan(int64(i)); err != nil {
				b.Fatal(err)
			}
			text, sink = q.SQL, q.Args
		}
	})
	b.Run("op=write", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			w, err := put.Exec(p, int64(i), "item", int64(i))
			if err != nil {
				b.Fatal(err)
			}
			text, sink = w.SQL, w.Args
		}
	})
	b.Run("op=read_built", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			sel, err := r.Select(p, "")
			if err != nil {
				b.Fatal(err)
			}
			a := r.Args()
			text = `SELECT name, ` + sel.Expr + ` FROM products` + sel.Join + ` WHERE id = ` + a.Bind(int64(i))
			if err := dualwrite.Into(sel, &cents).Scan(int64(i)); err != nil {
				b.Fatal(err)
			}
			sink = a.Values()
		}
	})
	b.Run("op=write_built", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			set, err := r.Set(p, int64(i))
			if err != nil {
				b.Fatal(err)
			}
			a := r.Args()
			text = `UPDATE products SET name = ` + a.Bind("item") + `, ` + set.Clauses(a) + ` WHERE id = ` + a.Bind(int64(i))
			sink = a.Values()
		}
	})
	b.Run("op=plain_args", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			sink = []any{"item", int64(i), int64(i), int64(i)}
		}
	})
	_, _ = text, sink
}
