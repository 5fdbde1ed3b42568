package triggers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/triggers"
)

// writes counts row writes per table caused by a case's statements (the
// writer's own and the triggers'). On PostgreSQL and MySQL a derived column
// within one table is set in NEW, so the row is written once; SQLite, which
// cannot assign NEW, writes it once more. Anything above these counts would
// be a double write; a loop would not terminate at all.
type writes struct {
	tables map[string]int
	sqlite map[string]int // when SQLite differs
}

func (w writes) for_(d dialect.Name) map[string]int {
	if d == dialect.SQLite && w.sqlite != nil {
		return w.sqlite
	}
	return w.tables
}

type syncCase struct {
	name string
	// pre runs before the triggers are installed: rows that already exist.
	pre []string
	// stmts are what the writer types, identifiers in double quotes.
	stmts  []string
	want   map[string][]string // table -> rows as dump prints them
	writes writes
}

func installMoves(t *testing.T, q dialect.Querier, d dialect.Name, names ...string) {
	t.Helper()
	for _, n := range names {
		set, err := triggers.ForMove(d, testMoves[n])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := triggers.Install(context.Background(), q, set); err != nil {
			t.Fatal(err)
		}
	}
}

func runSyncCases(t *testing.T, moves []string, tables map[string][]string, cases []syncCase) {
	dbtest.ForEach(t, func(t *testing.T, db *dialect.DB) {
		d := db.Engine()
		ctx := context.Background()
		createSchema(t, db)
		modes := []string{"default"}
		if d == dialect.SQLite {
			// The guards, not the engine's setting, stop the recursion.
			modes = append(modes, "recursive_triggers")
		}
		for _, mode := range modes {
			for _, c := range cases {
				t.Run(mode+"/"+c.name, func(t *testing.T) {
					conn, err := db.Connx(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer conn.Close()
					exec := func(s string) {
						t.Helper()
						if _, err := conn.ExecContext(ctx, ident(d, s)); err != nil {
							t.Fatalf("%s: %v", ident(d, s), err)
						}
					}
					if mode == "recursive_triggers" {
						exec(`PRAGMA recursive_triggers = ON`)
						defer exec(`PRAGMA recursive_triggers = OFF`)
					}
					for _, tb := range []string{"where", "order", "order_prices", "orders", "items"} {
						exec(`DELETE FROM "` + tb + `"`)
					}
					for _, n := range moves {
						if _, err := triggers.Drop(ctx, conn, d, testMoves[n].Name); err != nil {
							t.Fatal(err)
						}
					}
					for _, s := range c.pre {
						exec(s)
					}
					installMoves(t, conn, d, moves...)
					exec(`DELETE FROM "writes"`)
					for _, s := range c.stmts {
						exec(s)
					}
					for table, want := range c.want {
						got := dump(t, conn, d, table, tables[table]...)
						if !slices.Equal(got, want) {
							t.Errorf("%s: got %q, want %q", table, got, want)
						}
					}
					gotW, wantW := writeCounts(t, conn), c.writes.for_(d)
					for tb := range tables {
						if gotW[tb] != wantW[tb] {
							t.Errorf("row writes on %s: got %d, want %d (all: %v)", tb, gotW[tb], wantW[tb], gotW)
						}
					}
				})
			}
		}
	})
}

// TestSyncSameTable: writers that know only old, only new, or both, on a
// move within one table, with transforms (new = old * 10, old = new / 10),
// alongside a second move on the same table copied as is.
func TestSyncSameTable(t *testing.T) {
	cols := map[string][]string{"items": {"id", "price_cents", "price_mills", "label", "title"}}
	one := writes{tables: map[string]int{"items": 1}}
	derivedInsert := writes{tables: map[string]int{"items": 1}, sqlite: map[string]int{"items": 2}}
	derivedUpdate := writes{tables: map[string]int{"items": 1}, sqlite: map[string]int{"items": 2}}
	cases := []syncCase{
		{name: "old writer inserts", stmts: []string{`INSERT INTO "items" ("id", "price_cents") VALUES (1, 250)`},
			want: map[string][]string{"items": {"1,250,2500,-,-"}}, writes: derivedInsert},
		{name: "new writer inserts", stmts: []string{`INSERT INTO "items" ("id", "price_mills") VALUES (1, 2500)`},
			want: map[string][]string{"items": {"1,250,2500,-,-"}}, writes: derivedInsert},
		{name: "both writer inserts", stmts: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			want: map[string][]string{"items": {"1,250,2500,-,-"}}, writes: one},
		{name: "both given and disagreeing stay as written", stmts: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 9999)`},
			want: map[string][]string{"items": {"1,250,9999,-,-"}}, writes: one},
		{name: "neither given", stmts: []string{`INSERT INTO "items" ("id", "other") VALUES (1, 7)`},
			want: map[string][]string{"items": {"1,-,-,-,-"}}, writes: one},
		{name: "old writer updates", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`UPDATE "items" SET "price_cents" = 300 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,300,3000,-,-"}}, writes: derivedUpdate},
		{name: "new writer updates", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`UPDATE "items" SET "price_mills" = 4000 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,400,4000,-,-"}}, writes: derivedUpdate},
		{name: "new writer's value is kept when backward loses precision", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`UPDATE "items" SET "price_mills" = 4005 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,400,4005,-,-"}}, writes: derivedUpdate},
		{name: "both changed stay as written", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`UPDATE "items" SET "price_cents" = 1, "price_mills" = 99 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,1,99,-,-"}}, writes: one},
		{name: "old set to the value it has", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`UPDATE "items" SET "price_cents" = 250 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,250,2500,-,-"}}, writes: one},
		{name: "old changed to a value new already agrees with", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 251, 2509)`},
			stmts: []string{`UPDATE "items" SET "price_cents" = 250 WHERE "id" = 1`, `UPDATE "items" SET "price_cents" = 251 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,251,2510,-,-"}}, writes: writes{tables: map[string]int{"items": 2}, sqlite: map[string]int{"items": 3}}},
		{name: "unrelated column updated", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 9999)`},
			stmts: []string{`UPDATE "items" SET "other" = 5 WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,250,9999,-,-"}}, writes: one},
		{name: "old cleared clears new", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`UPDATE "items" SET "price_cents" = NULL WHERE "id" = 1`},
			want:  map[string][]string{"items": {"1,-,-,-,-"}}, writes: derivedUpdate},
		{name: "many rows in one statement",
			stmts: []string{
				`INSERT INTO "items" ("id", "price_cents") VALUES (1, 1), (2, 2), (3, 3)`,
				`UPDATE "items" SET "price_cents" = "price_cents" + 10`,
				`UPDATE "items" SET "price_mills" = "price_mills" * 2 WHERE "id" >= 2`,
			},
			want:   map[string][]string{"items": {"1,11,110,-,-", "2,24,240,-,-", "3,26,260,-,-"}},
			writes: writes{tables: map[string]int{"items": 8}, sqlite: map[string]int{"items": 16}}},
		{name: "second move on the same table, identity",
			stmts: []string{
				`INSERT INTO "items" ("id", "label") VALUES (1, 'a')`,
				`INSERT INTO "items" ("id", "title", "price_cents") VALUES (2, 'b', 5)`,
				`UPDATE "items" SET "title" = 'c' WHERE "id" = 1`,
			},
			want:   map[string][]string{"items": {"1,-,-,c,c", "2,5,50,b,b"}},
			writes: writes{tables: map[string]int{"items": 3}, sqlite: map[string]int{"items": 7}}},
		{name: "deleted and inserted again", pre: []string{`INSERT INTO "items" ("id", "price_cents", "price_mills") VALUES (1, 250, 2500)`},
			stmts: []string{`DELETE FROM "items" WHERE "id" = 1`, `INSERT INTO "items" ("id", "price_mills") VALUES (1, 70)`},
			want:  map[string][]string{"items": {"1,7,70,-,-"}}, writes: writes{tables: map[string]int{"items": 2}, sqlite: map[string]int{"items": 3}}},
	}
	runSyncCases(t, []string{"same_xform", "same_ident"}, cols, cases)
}

// TestSyncCrossTable: a move to another table with a composite key and a
// foreign key back without ON DELETE CASCADE.
func TestSyncCrossTable(t *testing.T) {
	cols := map[string][]string{
		"orders":       {"region", "id", "price_cents"},
		"order_prices": {"order_region", "order_id", "price_mills"},
	}
	w := func(orders, prices int) writes {
		return writes{tables: map[string]int{"orders": orders, "order_prices": prices}}
	}
	existing := `INSERT INTO "orders" ("region", "id", "price_cents") VALUES ('eu', 1, 250)`
	existingNew := `INSERT INTO "order_prices" ("order_region", "order_id", "price_mills") VALUES ('eu', 1, 2500)`
	cases := []syncCase{
		{name: "old writer inserts", stmts: []string{existing},
			want:   map[string][]string{"orders": {"eu,1,250"}, "order_prices": {"eu,1,2500"}},
			writes: w(1, 1)},
		{name: "old writer inserts NULL", stmts: []string{`INSERT INTO "orders" ("region", "id") VALUES ('eu', 1)`},
			want:   map[string][]string{"orders": {"eu,1,-"}, "order_prices": nil},
			writes: w(1, 0)},
		{name: "old writer updates", stmts: []string{existing, `UPDATE "orders" SET "price_cents" = 300 WHERE "region" = 'eu' AND "id" = 1`},
			want:   map[string][]string{"orders": {"eu,1,300"}, "order_prices": {"eu,1,3000"}},
			writes: w(2, 2)},
		{name: "old writer updates a row that has no new row yet", pre: []string{existing},
			stmts:  []string{`UPDATE "orders" SET "price_cents" = 300 WHERE "region" = 'eu' AND "id" = 1`},
			want:   map[string][]string{"orders": {"eu,1,300"}, "order_prices": {"eu,1,3000"}},
			writes: w(1, 1)},
		{name: "old writer deletes", stmts: []string{existing, `DELETE FROM "orders" WHERE "region" = 'eu' AND "id" = 1`},
			want:   map[string][]string{"orders": nil, "order_prices": nil},
			writes: w(2, 2)},
		{name: "new writer inserts", stmts: []string{`INSERT INTO "orders" ("region", "id") VALUES ('eu', 1)`, existingNew},
			want:   map[string][]string{"orders": {"eu,1,250"}, "order_prices": {"eu,1,2500"}},
			writes: w(2, 1)},
		{name: "new writer updates", pre: []string{existing, existingNew},
			stmts:  []string{`UPDATE "order_prices" SET "price_mills" = 4000 WHERE "order_region" = 'eu' AND "order_id" = 1`},
			want:   map[string][]string{"orders": {"eu,1,400"}, "order_prices": {"eu,1,4000"}},
			writes: w(1, 1)},
		{name: "new writer deletes the new row", pre: []string{existing, existingNew},
			stmts:  []string{`DELETE FROM "order_prices" WHERE "order_region" = 'eu' AND "order_id" = 1`},
			want:   map[string][]string{"orders": {"eu,1,-"}, "order_prices": nil},
			writes: w(1, 1)},
		{name: "new writer deletes both", pre: []string{existing, existingNew},
			stmts: []string{
				`DELETE FROM "order_prices" WHERE "order_region" = 'eu' AND "order_id" = 1`,
				`DELETE FROM "orders" WHERE "region" = 'eu' AND "id" = 1`,
			},
			want:   map[string][]string{"orders": nil, "order_prices": nil},
			writes: w(2, 1)},
		{name: "new row inserted without a value takes old's", pre: []string{existing},
			stmts:  []string{`INSERT INTO "order_prices" ("order_region", "order_id") VALUES ('eu', 1)`},
			want:   map[string][]string{"orders": {"eu,1,250"}, "order_prices": {"eu,1,2500"}},
			writes: writes{tables: map[string]int{"order_prices": 1}, sqlite: map[string]int{"order_prices": 2}}},
		{name: "both writer, upserting the new row", stmts: []string{existing, `UPDATE "order_prices" SET "price_mills" = 2500 WHERE "order_region" = 'eu' AND "order_id" = 1`,
			`UPDATE "orders" SET "price_cents" = 300 WHERE "region" = 'eu' AND "id" = 1`, `UPDATE "order_prices" SET "price_mills" = 3000 WHERE "order_region" = 'eu' AND "order_id" = 1`},
			want:   map[string][]string{"orders": {"eu,1,300"}, "order_prices": {"eu,1,3000"}},
			writes: w(2, 4)},
		{name: "many rows, both directions", stmts: []string{
			`INSERT INTO "orders" ("region", "id", "price_cents") VALUES ('eu', 1, 1), ('eu', 2, 2), ('us', 1, 3)`,
			`UPDATE "orders" SET "price_cents" = "price_cents" + 10 WHERE "region" = 'eu'`,
			`UPDATE "order_prices" SET "price_mills" = "price_mills" * 2`,
			`DELETE FROM "orders" WHERE "id" = 2`,
		},
			want:   map[string][]string{"orders": {"eu,1,22", "us,1,6"}, "order_prices": {"eu,1,220", "us,1,60"}},
			writes: w(3+2+3+1, 3+2+3+1)},
	}
	runSyncCases(t, []string{"cross_xform"}, cols, cases)
}

// TestSyncReservedWords: every identifier is a reserved word ("order",
// "group", "from", "where", "to"), quoted per engine, across tables with ON
// DELETE CASCADE.
func TestSyncReservedWords(t *testing.T) {
	cols := map[string][]string{"order": {"group", "from"}, "where": {"group", "to"}}
	cases := []syncCase{
		{name: "old writer", stmts: []string{`INSERT INTO "order" ("group", "from") VALUES (1, 'x')`, `UPDATE "order" SET "from" = 'y'`},
			want:   map[string][]string{"order": {"1,y"}, "where": {"1,y"}},
			writes: writes{tables: map[string]int{"order": 2, "where": 2}}},
		{name: "new writer", stmts: []string{`INSERT INTO "order" ("group") VALUES (1)`, `INSERT INTO "where" ("group", "to") VALUES (1, 'z')`},
			want:   map[string][]string{"order": {"1,z"}, "where": {"1,z"}},
			writes: writes{tables: map[string]int{"order": 2, "where": 1}}},
		{name: "delete cascades", stmts: []string{`INSERT INTO "order" ("group", "from") VALUES (1, 'x')`, `DELETE FROM "order"`},
			want:   map[string][]string{"order": nil, "where": nil},
			writes: writes{tables: map[string]int{"order": 2, "where": 2}}},
	}
	runSyncCases(t, []string{"cross_reserved"}, cols, cases)
}

// TestMySQLStatementOnBothTables pins down what MySQL cannot do: a single
// statement that uses both tables of a cross-table move (a multi-table
// UPDATE, INSERT ... SELECT from the other table) is refused with error
// 1442 as soon as a trigger has to write the other table, and the
// statement is rolled back whole: nothing is left half-synced.
func TestMySQLStatementOnBothTables(t *testing.T) {
	db := dbtest.Open(t, dialect.MySQL)
	ctx := context.Background()
	createSchema(t, db)
	installMoves(t, db, dialect.MySQL, "cross_xform")
	db.MustExec(`INSERT INTO orders (region, id, price_cents) VALUES ('eu', 1, 5)`)
	for _, s := range []string{
		`UPDATE orders o JOIN order_prices p ON p.order_region = o.region AND p.order_id = o.id SET o.price_cents = 6, p.price_mills = 60`,
		`UPDATE orders o JOIN order_prices p ON p.order_region = o.region AND p.order_id = o.id SET p.price_mills = 90`,
		`INSERT INTO orders (region, id, price_cents) SELECT 'us', order_id, price_mills DIV 10 FROM order_prices`,
	} {
		if _, err := db.ExecContext(ctx, s); err == nil || !strings.Contains(err.Error(), "1442") {
			t.Errorf("%s: got %v, want error 1442", s, err)
		}
	}
	if got := dump(t, db, dialect.MySQL, "orders", "region", "id", "price_cents"); !slices.Equal(got, []string{"eu,1,5"}) {
		t.Errorf("orders: %q", got)
	}
	if got := dump(t, db, dialect.MySQL, "order_prices", "order_region", "order_id", "price_mills"); !slices.Equal(got, []string{"eu,1,50"}) {
		t.Errorf("order_prices: %q", got)
	}
}
