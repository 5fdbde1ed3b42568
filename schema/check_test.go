package schema_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/internal/dbtest"
	"github.com/tandem-go/tandem/internal/sqldialect"
	"github.com/tandem-go/tandem/schema"
)

// Check only reads: it names the tables missing or behind, and passes once
// Ensure ran; a nil logger is refused before Ensure does anything.
func TestCheck(t *testing.T) {
	ctx := context.Background()
	db := dbtest.Open(t, dialect.SQLite)
	tables := []schema.Table{{Name: "tandem_t", Migrations: []schema.Migration{{Version: 1, Description: "t", Steps: []schema.Step{
		schema.CreateTable{Name: "tandem_t", Columns: []schema.Column{{Name: "id", Type: schema.Key}}, PrimaryKey: []string{"id"}},
	}}}}}
	var ne *schema.NotEnsuredError
	if err := schema.Check(ctx, db, tables); !errors.As(err, &ne) || !errors.Is(err, schema.ErrNotEnsured) || len(ne.Tables) != 1 {
		t.Fatalf("Check before Ensure: %v", err)
	}
	if ok, err := sqldialect.Of(db).TableExists(ctx, db, schema.VersionsTable); err != nil || ok {
		t.Fatalf("Check wrote the versions table: %v %v", ok, err)
	}
	if _, err := schema.Ensure(ctx, db, tables, schema.WithLogger(nil)); !errors.Is(err, schema.ErrInvalidOption) {
		t.Fatalf("Ensure with a nil logger: %v", err)
	}
	if _, err := schema.Ensure(ctx, db, tables); err != nil {
		t.Fatal(err)
	}
	if err := schema.Check(ctx, db, tables); err != nil {
		t.Fatalf("Check after Ensure: %v", err)
	}
}
