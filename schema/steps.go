package schema

import (
	"context"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// Step is one idempotent piece of DDL. Done reads the live schema, so a step
// whose effect is present is never run twice and one that is missing is
// never skipped.
type Step interface {
	SQL(engine dialect.Name) (string, error)
	Done(ctx context.Context, engine dialect.Name, q dialect.Querier) (bool, error)
}

// Type is a portable column type, mapped per dialect.
type Type int

// Column types for tandem's tables.
const (
	Key       Type = iota // an indexable string
	Text                  // unbounded text
	BigInt                // 64-bit integer
	Timestamp             // UTC timestamp
)

// Column declares one column of a tandem table.
type Column struct {
	Name    string
	Type    Type
	Null    bool
	Default string // a SQL literal, used as is
}

func (c Column) sql(d sqldialect.Dialect) (string, error) {
	q, err := d.Quote(c.Name)
	if err != nil {
		return "", err
	}
	var typ string
	switch c.Type {
	case Key:
		typ = d.KeyType()
	case Text:
		typ = d.TextType()
	case BigInt:
		typ = d.BigIntType()
	case Timestamp:
		typ = d.TimestampType()
	default:
		return "", fmt.Errorf("schema: column %s: unknown type %d", c.Name, c.Type)
	}
	s := q + " " + typ
	if !c.Null {
		s += " NOT NULL"
	}
	if c.Default != "" {
		s += " DEFAULT " + c.Default
	}
	return s, nil
}

// CreateTable creates a table with its columns and primary key.
type CreateTable struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
}

func (s CreateTable) SQL(engine dialect.Name) (string, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return "", derr
	}
	name, err := d.Quote(s.Name)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, c := range s.Columns {
		cs, err := c.sql(d)
		if err != nil {
			return "", err
		}
		parts = append(parts, "  "+cs)
	}
	if len(s.PrimaryKey) > 0 {
		pk, err := quoteAll(d, s.PrimaryKey)
		if err != nil {
			return "", err
		}
		parts = append(parts, "  PRIMARY KEY ("+pk+")")
	}
	return "CREATE TABLE " + name + " (\n" + strings.Join(parts, ",\n") + "\n)", nil
}

func (s CreateTable) Done(ctx context.Context, engine dialect.Name, q dialect.Querier) (bool, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return false, derr
	}
	return d.TableExists(ctx, q, s.Name)
}

// AddColumn adds one column to an existing table.
type AddColumn struct {
	Table  string
	Column Column
}

func (s AddColumn) SQL(engine dialect.Name) (string, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return "", derr
	}
	t, err := d.Quote(s.Table)
	if err != nil {
		return "", err
	}
	cs, err := s.Column.sql(d)
	if err != nil {
		return "", err
	}
	return "ALTER TABLE " + t + " ADD COLUMN " + cs, nil
}

func (s AddColumn) Done(ctx context.Context, engine dialect.Name, q dialect.Querier) (bool, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return false, derr
	}
	cols, err := d.Columns(ctx, q, s.Table)
	if err != nil {
		return false, err
	}
	for _, c := range cols {
		if strings.EqualFold(c.Name, s.Column.Name) {
			return true, nil
		}
	}
	return false, nil
}

// CreateIndex creates an index on existing columns.
type CreateIndex struct {
	Table   string
	Name    string
	Columns []string
	Unique  bool
}

func (s CreateIndex) SQL(engine dialect.Name) (string, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return "", derr
	}
	t, err := d.Quote(s.Table)
	if err != nil {
		return "", err
	}
	n, err := d.Quote(s.Name)
	if err != nil {
		return "", err
	}
	cols, err := quoteAll(d, s.Columns)
	if err != nil {
		return "", err
	}
	kw := "CREATE INDEX "
	if s.Unique {
		kw = "CREATE UNIQUE INDEX "
	}
	return kw + n + " ON " + t + " (" + cols + ")", nil
}

func (s CreateIndex) Done(ctx context.Context, engine dialect.Name, q dialect.Querier) (bool, error) {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return false, derr
	}
	return d.IndexExists(ctx, q, s.Table, s.Name)
}

func quoteAll(d sqldialect.Dialect, names []string) (string, error) {
	out := make([]string, len(names))
	for i, n := range names {
		q, err := d.Quote(n)
		if err != nil {
			return "", err
		}
		out[i] = q
	}
	return strings.Join(out, ", "), nil
}
