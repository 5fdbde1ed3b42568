package sqldialect

import (
	"context"
	"fmt"
	"sort"

	"github.com/tandem-go/tandem/dialect"
)

// Trigger is one trigger as the engine keeps it, with its full definition.
type Trigger struct {
	Name       string
	Table      string
	Definition string
}

// ListTables returns every base table of the database (the current schema
// on PostgreSQL), sorted; tests compare databases with it.
func ListTables(ctx context.Context, q dialect.Querier, engine dialect.Name) ([]string, error) {
	var query string
	switch engine {
	case dialect.SQLite:
		query = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	case dialect.Postgres:
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
	case dialect.MySQL:
		query = `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'`
	default:
		return nil, fmt.Errorf("dialect: unknown engine %q", engine)
	}
	var out []string
	if err := q.SelectContext(ctx, &out, query); err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// ListTriggers returns every trigger of the database with its definition
// (on PostgreSQL, the trigger's and its function's), sorted by name.
func ListTriggers(ctx context.Context, q dialect.Querier, engine dialect.Name) ([]Trigger, error) {
	var query string
	switch engine {
	case dialect.SQLite:
		query = `SELECT name, tbl_name AS tbl, sql AS def FROM sqlite_master WHERE type = 'trigger'`
	case dialect.Postgres:
		query = `SELECT t.tgname AS name, c.relname AS tbl, pg_get_triggerdef(t.oid) || E'\n' || pg_get_functiondef(t.tgfoid) AS def
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace`
	case dialect.MySQL:
		query = `SELECT trigger_name AS name, event_object_table AS tbl, CONCAT(action_timing, ' ', event_manipulation, ' ', action_statement) AS def
FROM information_schema.triggers WHERE trigger_schema = DATABASE()`
	default:
		return nil, fmt.Errorf("dialect: unknown engine %q", engine)
	}
	var rows []struct {
		Name string `db:"name"`
		Tbl  string `db:"tbl"`
		Def  string `db:"def"`
	}
	if err := q.SelectContext(ctx, &rows, query); err != nil {
		return nil, err
	}
	out := make([]Trigger, len(rows))
	for i, r := range rows {
		out[i] = Trigger{Name: r.Name, Table: r.Tbl, Definition: r.Def}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
