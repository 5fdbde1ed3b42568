package dualwrite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/move"
)

// The application's own statements carry the moved value: an UPDATE that
// sets another column too, and a SELECT that reads it with the rest of the
// row, with no query of tandem's own.
func ExampleRouter_Select() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "shop.db"))
	defer db.Close()
	db.MustExec(`CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL(12,2), price_cents INTEGER)`)
	db.MustExec(`INSERT INTO products (id, name, price, price_cents) VALUES (1, 'tea', 9.99, 999)`)
	m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents"},
		Forward:  move.Transform{SQL: "CAST(ROUND({value} * 100) AS INTEGER)"},
		Backward: move.Transform{SQL: "{value} / 100.0"}}
	r, _ := dualwrite.NewRouter(m, db.Engine())

	// In write-both an UPDATE sets old and new; placeholders are bound in
	// the order they appear.
	set, _ := r.Set(move.WriteBoth, int64(1250))
	a := r.Args()
	stmt := `UPDATE products SET name = ` + a.Bind("green tea") + `, ` + set.Clauses(a) + ` WHERE id = ` + a.Bind(1)
	fmt.Println(stmt)
	_, _ = db.ExecContext(ctx, stmt, a.Values()...)

	// Reads follow the phase: old (through Forward) before read-new, new after.
	for _, p := range []move.Phase{move.WriteBoth, move.ReadNew} {
		sel, _ := r.Select(p, "")
		var name string
		var cents int64
		_ = db.QueryRowContext(ctx, `SELECT name, `+sel.Expr+` FROM products WHERE id = ?`, 1).
			Scan(&name, dualwrite.Into(sel, &cents))
		fmt.Println(p, sel.Expr, name, cents)
	}
	// Output:
	// UPDATE products SET name = ?, "price" = (? / 100.0), "price_cents" = ? WHERE id = ?
	// write-both (CAST(ROUND("products"."price" * 100) AS INTEGER)) green tea 1250
	// read-new "products"."price_cents" green tea 1250
}

// Inserting a new row during a cross-table move: the source row gets the
// old column while the phase writes it, and Finish writes the destination
// row in the same transaction.
func ExampleRouter_Insert() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "stack.db"))
	defer db.Close()
	db.MustExec(`CREATE TABLE resource (id INTEGER PRIMARY KEY, name TEXT, properties TEXT)`)
	db.MustExec(`CREATE TABLE resource_data (resource_id INTEGER PRIMARY KEY REFERENCES resource (id), data TEXT)`)
	m := move.Move{Name: "resource_props", Table: "resource", Key: []string{"id"}, Old: "properties",
		New: move.Target{Table: "resource_data", Column: "data", Key: []string{"resource_id"}}}
	r, _ := dualwrite.NewRouter(m, db.Engine())

	for id, p := range []move.Phase{move.Legacy, move.ReadNew, move.WriteNew} {
		tx, _ := db.BeginTx(ctx, nil)
		ins, _ := r.Insert(p, fmt.Sprintf(`{"n": %d}`, id))
		a := r.Args()
		stmt := `INSERT INTO resource (id` + ins.Columns() + `) VALUES (` + a.Bind(id) + ins.Values(a) + `)`
		_, _ = tx.ExecContext(ctx, stmt, a.Values()...)
		_ = ins.Finish(ctx, tx, id) // nothing to do at legacy
		_ = tx.Commit()
		got, _ := dualwrite.ReadValue[sql.Null[string]](ctx, db, r, p, id)
		fmt.Printf("%s: %s; new table written: %v; reads %s\n", p, stmt, ins.Needed(), got.V)
	}
	// Output:
	// legacy: INSERT INTO resource (id, "properties") VALUES (?, ?); new table written: false; reads {"n": 0}
	// read-new: INSERT INTO resource (id, "properties") VALUES (?, ?); new table written: true; reads {"n": 1}
	// write-new: INSERT INTO resource (id) VALUES (?); new table written: true; reads {"n": 2}
}

// A hot path keeps its statement per phase: the fragments are written into
// it once for each phase, and each call binds only the values.
func ExampleRouter_Statement() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "shop.db"))
	defer db.Close()
	db.MustExec(`CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL(12,2), price_cents INTEGER)`)
	db.MustExec(`INSERT INTO products (id, name, price, price_cents) VALUES (1, 'tea', 9.99, 999)`)
	m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:      move.Target{Column: "price_cents"},
		Forward:  move.Transform{SQL: "CAST(ROUND({value} * 100) AS INTEGER)"},
		Backward: move.Transform{SQL: "{value} / 100.0"}}
	r, _ := dualwrite.NewRouter(m, db.Engine())

	// Once, at start: the statements, each with a placeholder per own
	// argument (f.Arg) and the move's fragments.
	rename := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		return `UPDATE products SET name = ` + f.Arg() + `, ` + f.Clauses() + ` WHERE id = ` + f.Arg(), nil
	})
	get := r.Statement(func(f *dualwrite.Fragments) (string, error) {
		sel, err := f.Select("")
		return `SELECT name, ` + sel.Expr + ` FROM products` + sel.Join + ` WHERE id = ` + f.Arg(), err
	})

	// Per call: the phase, the moved value and the statement's own
	// arguments, in the order of its placeholders.
	for i, p := range []move.Phase{move.WriteBoth, move.ReadNew} {
		w, _ := rename.Exec(p, int64(1250+i), "green tea", 1)
		_, _ = db.ExecContext(ctx, w.SQL, w.Args...)
		_ = w.Finish(ctx, db, 1) // a cross-table move's other table; nothing here
		q, _ := get.Query(p, 1)
		var name string
		var cents int64
		_ = db.QueryRowContext(ctx, q.SQL, q.Args...).Scan(&name, dualwrite.Into(q.Select, &cents))
		fmt.Println(p, w.SQL, w.Args)
		fmt.Println(p, q.SQL, name, cents)
	}
	// Output:
	// write-both UPDATE products SET name = ?, "price" = (? / 100.0), "price_cents" = ? WHERE id = ? [green tea 1250 1250 1]
	// write-both SELECT name, (CAST(ROUND("products"."price" * 100) AS INTEGER)) FROM products WHERE id = ? green tea 1250
	// read-new UPDATE products SET name = ?, "price" = (? / 100.0), "price_cents" = ? WHERE id = ? [green tea 1251 1251 1]
	// read-new SELECT name, "products"."price_cents" FROM products WHERE id = ? green tea 1251
}
