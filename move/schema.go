package move

import (
	"context"
	"fmt"
	"strings"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/sqldialect"
)

// CheckSchema validates m against the live schema as it must be when the
// move stands at phase p, and returns a *SchemaError (errors.Is ErrSchema
// and one of ErrNoTable, ErrNoColumn, ErrIncompatibleType) on the first
// mismatch. It only reads.
//
// The source table, its key and, before Contracted, the old column must
// exist. The new column (and for a cross-table move its table) must exist
// from WriteBoth on; before that it may be absent, since the expand step
// creates it, but when present its type is checked too. An identity
// transform needs old and new of the same kind (integer, decimal, text,
// time, boolean, binary; an integer may widen into a decimal).
func (m Move) CheckSchema(ctx context.Context, q dialect.Querier, engine dialect.Name, p Phase) error {
	d, derr := sqldialect.For(engine)
	if derr != nil {
		return derr
	}
	if err := m.Validate(); err != nil {
		return err
	}
	fail := func(table, col, reason string, kind error) error {
		return &SchemaError{Move: m.Name, Table: table, Column: col, Reason: reason, Kind: kind}
	}
	src, err := liveColumns(ctx, q, d, m.Table)
	if err != nil {
		return fmt.Errorf("move %q: read schema of %s: %w", m.Name, m.Table, err)
	}
	if src == nil {
		return fail(m.Table, "", "table does not exist", ErrNoTable)
	}
	for _, k := range m.Key {
		if _, ok := src[strings.ToLower(k)]; !ok {
			return fail(m.Table, k, "key column does not exist", ErrNoColumn)
		}
	}
	oldCol, hasOld := src[strings.ToLower(m.Old)]
	if !hasOld && p < Contracted {
		return fail(m.Table, m.Old, "old column does not exist", ErrNoColumn)
	}
	dst := src
	if m.CrossTable() {
		dst, err = liveColumns(ctx, q, d, m.New.Table)
		if err != nil {
			return fmt.Errorf("move %q: read schema of %s: %w", m.Name, m.New.Table, err)
		}
		if dst == nil {
			if p >= WriteBoth || len(m.New.KeyType) == 0 || m.New.Type.For(d.Name()) == "" {
				reason := "new table does not exist"
				if p < WriteBoth {
					reason += " and the move declares no New.Type and New.KeyType to create it with"
				}
				return fail(m.New.Table, "", reason, ErrNoTable)
			}
			return nil
		}
		for i, k := range m.New.Key {
			nk, ok := dst[strings.ToLower(k)]
			if !ok {
				return fail(m.New.Table, k, "key column (referencing "+m.Table+"."+m.Key[i]+") does not exist", ErrNoColumn)
			}
			sk := src[strings.ToLower(m.Key[i])]
			if !compatible(kindOf(sk.Type), kindOf(nk.Type)) {
				return fail(m.New.Table, k, fmt.Sprintf("type %s cannot hold %s.%s of type %s", nk.Type, m.Table, m.Key[i], sk.Type), ErrIncompatibleType)
			}
		}
	}
	newCol, hasNew := dst[strings.ToLower(m.New.Column)]
	if !hasNew {
		if p >= WriteBoth {
			return fail(m.NewTable(), m.New.Column, "new column does not exist", ErrNoColumn)
		}
		if m.New.Type.For(d.Name()) == "" {
			return fail(m.NewTable(), m.New.Column, "new column does not exist and the move declares no New.Type to add it with", ErrNoColumn)
		}
		return nil
	}
	if hasOld && m.Forward.IsIdentity() && !compatible(kindOf(oldCol.Type), kindOf(newCol.Type)) {
		return fail(m.NewTable(), m.New.Column, fmt.Sprintf("type %s cannot take %s.%s of type %s as is; declare a Forward transform", newCol.Type, m.Table, m.Old, oldCol.Type), ErrIncompatibleType)
	}
	if hasOld && m.Backward.IsIdentity() && !m.Forward.IsIdentity() && !compatible(kindOf(newCol.Type), kindOf(oldCol.Type)) {
		return fail(m.Table, m.Old, fmt.Sprintf("type %s cannot take %s.%s of type %s as is; declare a Backward transform", oldCol.Type, m.NewTable(), m.New.Column, newCol.Type), ErrIncompatibleType)
	}
	return nil
}

func liveColumns(ctx context.Context, q dialect.Querier, d sqldialect.Dialect, table string) (map[string]sqldialect.Column, error) {
	ok, err := d.TableExists(ctx, q, table)
	if err != nil || !ok {
		return nil, err
	}
	cols, err := d.Columns(ctx, q, table)
	if err != nil {
		return nil, err
	}
	out := make(map[string]sqldialect.Column, len(cols))
	for _, c := range cols {
		out[strings.ToLower(c.Name)] = c
	}
	return out, nil
}

type kind int

const (
	kindUnknown kind = iota
	kindInt
	kindDecimal
	kindText
	kindTime
	kindBool
	kindBinary
)

// kindOf classifies a type as the engine reports it. The rules follow
// SQLite's affinity rules, which also cover the PostgreSQL and MariaDB names.
func kindOf(t string) kind {
	t = strings.ToUpper(t)
	switch {
	case strings.HasPrefix(t, "TINYINT(1)"), strings.HasPrefix(t, "BOOL"):
		return kindBool
	case strings.Contains(t, "INT"):
		return kindInt
	case strings.Contains(t, "CHAR"), strings.Contains(t, "TEXT"), strings.Contains(t, "CLOB"), strings.Contains(t, "JSON"), strings.Contains(t, "UUID"):
		return kindText
	case strings.Contains(t, "BLOB"), strings.Contains(t, "BYTEA"), strings.Contains(t, "BINARY"):
		return kindBinary
	case strings.Contains(t, "DATE"), strings.Contains(t, "TIME"):
		return kindTime
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"), strings.Contains(t, "NUMERIC"), strings.Contains(t, "DECIMAL"):
		return kindDecimal
	}
	return kindUnknown
}

// compatible reports whether a value of kind from can be stored as is in a
// column of kind to. Unknown kinds are given the benefit of the doubt.
func compatible(from, to kind) bool {
	switch {
	case from == kindUnknown || to == kindUnknown || from == to:
		return true
	case from == kindInt && to == kindDecimal:
		return true
	}
	return false
}
