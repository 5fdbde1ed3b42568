package sqldialect

import (
	"context"
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
	d, err := For(engine)
	if err != nil {
		return nil, err
	}
	query := d.tablesQuery()
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
	d, err := For(engine)
	if err != nil {
		return nil, err
	}
	query := d.triggersQuery()
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
