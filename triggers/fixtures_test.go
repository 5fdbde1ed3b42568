package triggers_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/tandem-go/tandem/dialect"
)

// The tests' own tables. Identifiers are written with double quotes and
// turned into backticks for MySQL; string literals use single quotes.

func ident(d dialect.Name, sql string) string {
	if d == dialect.MySQL {
		return strings.ReplaceAll(sql, `"`, "`")
	}
	return sql
}

func textType(d dialect.Name) string {
	if d == dialect.MySQL {
		return "VARCHAR(100)"
	}
	return "TEXT"
}

func schemaSQL(d dialect.Name) []string {
	txt := textType(d)
	key := txt
	if d == dialect.MySQL {
		key = "VARCHAR(20)"
	}
	stmts := []string{
		`CREATE TABLE "items" ("id" INTEGER PRIMARY KEY, "price_cents" INTEGER NULL, "price_mills" INTEGER NULL, "label" ` + txt + ` NULL, "title" ` + txt + ` NULL, "other" INTEGER NULL)`,
		`CREATE TABLE "orders" ("region" ` + key + ` NOT NULL, "id" INTEGER NOT NULL, "price_cents" INTEGER NULL, PRIMARY KEY ("region", "id"))`,
		// No ON DELETE CASCADE: old writers that delete orders must still
		// succeed, which is the triggers' job.
		`CREATE TABLE "order_prices" ("order_region" ` + key + ` NOT NULL, "order_id" INTEGER NOT NULL, "price_mills" INTEGER NULL, PRIMARY KEY ("order_region", "order_id"), FOREIGN KEY ("order_region", "order_id") REFERENCES "orders" ("region", "id"))`,
		`CREATE TABLE "order" ("group" INTEGER PRIMARY KEY, "from" ` + txt + ` NULL)`,
		`CREATE TABLE "where" ("group" INTEGER PRIMARY KEY, "to" ` + txt + ` NULL, FOREIGN KEY ("group") REFERENCES "order" ("group") ON DELETE CASCADE)`,
		`CREATE TABLE "writes" ("tbl" VARCHAR(30) NOT NULL, "op" VARCHAR(10) NOT NULL)`,
	}
	tables := []string{"items", "orders", "order_prices", "order", "where"}
	switch d {
	case dialect.SQLite:
		for _, t := range tables {
			for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
				stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER "audit_%s_%s" AFTER %s ON "%s" FOR EACH ROW BEGIN INSERT INTO "writes" VALUES ('%s', '%s'); END`,
					t, strings.ToLower(op), op, t, t, strings.ToLower(op)))
			}
		}
	case dialect.Postgres:
		stmts = append(stmts, `CREATE FUNCTION "audit"() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO "writes" VALUES (TG_TABLE_NAME, lower(TG_OP)); RETURN NULL; END $$`)
		for _, t := range tables {
			stmts = append(stmts, fmt.Sprintf(`CREATE TRIGGER "audit_%s" AFTER INSERT OR UPDATE OR DELETE ON "%s" FOR EACH ROW EXECUTE FUNCTION "audit"()`, t, t))
		}
	case dialect.MySQL:
		for _, t := range tables {
			for _, op := range []string{"INSERT", "UPDATE", "DELETE"} {
				stmts = append(stmts, fmt.Sprintf("CREATE TRIGGER `audit_%s_%s` AFTER %s ON `%s` FOR EACH ROW INSERT INTO `writes` VALUES ('%s', '%s')",
					t, strings.ToLower(op), op, t, t, strings.ToLower(op)))
			}
		}
	}
	for i := range stmts {
		stmts[i] = ident(d, stmts[i])
	}
	return stmts
}

func createSchema(t testing.TB, db *dialect.DB) {
	t.Helper()
	for _, s := range schemaSQL(db.Engine()) {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// writeCounts returns the row writes per table since the last reset.
func writeCounts(t testing.TB, q dialect.Querier) map[string]int {
	t.Helper()
	rows, err := q.QueryxContext(context.Background(), `SELECT tbl, COUNT(*) FROM writes GROUP BY tbl`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var tbl string
		var n int
		if err := rows.Scan(&tbl, &n); err != nil {
			t.Fatal(err)
		}
		out[tbl] = n
	}
	return out
}

// dump returns a table's rows, ordered, as text: "k1,k2=v1,v2" per row, so
// expectations read like the data. NULL prints as "-".
func dump(t testing.TB, q dialect.Querier, d dialect.Name, table string, cols ...string) []string {
	t.Helper()
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = `"` + c + `"`
	}
	query := ident(d, `SELECT `+strings.Join(quoted, ", ")+` FROM "`+table+`" ORDER BY `+strings.Join(quoted, ", "))
	rows, err := q.QueryxContext(context.Background(), query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = "-"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, ","))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
