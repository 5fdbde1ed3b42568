package dbtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// Dump writes down everything a command could change in the database:
// every table with its columns, every row (ordered by all its columns) and
// every trigger with its definition. Two dumps are equal exactly when the
// database is, so a test of a read-only command compares the dump taken
// before it with the one taken after.
func Dump(t testing.TB, db *dialect.DB) string {
	t.Helper()
	s, err := DumpString(context.Background(), db)
	if err != nil {
		t.Fatalf("dbtest: dump: %v", err)
	}
	return s
}

// DumpString is Dump for code without a testing.TB.
func DumpString(ctx context.Context, db *dialect.DB) (string, error) {
	var b strings.Builder
	engine := db.Engine()
	tables, err := sqldialect.ListTables(ctx, db, engine)
	if err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	for _, tbl := range tables {
		cols, err := sqldialect.Of(db).Columns(ctx, db, tbl)
		if err != nil {
			return "", fmt.Errorf("columns of %s: %w", tbl, err)
		}
		fmt.Fprintf(&b, "table %s\n", tbl)
		order := make([]string, len(cols))
		for i, c := range cols {
			fmt.Fprintf(&b, "  column %s %s null=%v\n", c.Name, c.Type, c.Nullable)
			order[i] = fmt.Sprint(i + 1)
		}
		q, err := sqldialect.Of(db).Quote(tbl)
		if err != nil {
			return "", err
		}
		query := "SELECT * FROM " + q
		if len(order) > 0 {
			query += " ORDER BY " + strings.Join(order, ", ")
		}
		rows, err := db.QueryxContext(ctx, query)
		if err != nil {
			return "", fmt.Errorf("rows of %s: %w", tbl, err)
		}
		for rows.Next() {
			vals, err := rows.SliceScan()
			if err != nil {
				rows.Close()
				return "", err
			}
			parts := make([]string, len(vals))
			for i, v := range vals {
				parts[i] = value(v)
			}
			fmt.Fprintf(&b, "  row %s\n", strings.Join(parts, " | "))
		}
		if err := rows.Close(); err != nil {
			return "", err
		}
		if err := rows.Err(); err != nil {
			return "", err
		}
	}
	trigs, err := sqldialect.ListTriggers(ctx, db, engine)
	if err != nil {
		return "", fmt.Errorf("list triggers: %w", err)
	}
	for _, tr := range trigs {
		fmt.Fprintf(&b, "trigger %s on %s\n  %s\n", tr.Name, tr.Table, strings.ReplaceAll(tr.Definition, "\n", "\n  "))
	}
	return b.String(), nil
}

func value(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("%q", x)
	case string:
		return fmt.Sprintf("%q", x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// Schema is Dump without rows, and without the tables whose names start
// with one of skip (tandem's own, a migration tool's version table), for
// comparing what two ways of changing a schema made of the same tables.
// A trigger's definition has its whitespace collapsed: engines keep the
// text as it was sent, and tools send it with different line ends.
func Schema(t testing.TB, db *dialect.DB, skip ...string) string {
	t.Helper()
	skipped := func(name string) bool {
		for _, p := range skip {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	var (
		out  []string
		keep bool
	)
	for _, line := range strings.Split(Dump(t, db), "\n") {
		switch {
		case strings.HasPrefix(line, "table "):
			keep = !skipped(strings.TrimPrefix(line, "table "))
			if keep {
				out = append(out, line)
			}
		case strings.HasPrefix(line, "trigger "):
			_, on, _ := strings.Cut(line, " on ")
			keep = !skipped(on)
			if keep {
				out = append(out, line, " ")
			}
		case !keep, strings.HasPrefix(line, "  row "), line == "":
		case strings.HasPrefix(line, "  column "):
			out = append(out, line)
		default: // a line of the last trigger's definition
			out[len(out)-1] += " " + strings.Join(strings.Fields(line), " ")
		}
	}
	return strings.Join(out, "\n") + "\n"
}
