package schema_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/schema"
)

func ExampleEnsure() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, _ := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	defer db.Close()

	notes := schema.Table{Name: "tandem_notes", Migrations: []schema.Migration{
		{Version: 1, Description: "create", Steps: []schema.Step{
			schema.CreateTable{Name: "tandem_notes", PrimaryKey: []string{"id"}, Columns: []schema.Column{
				{Name: "id", Type: schema.Key}, {Name: "body", Type: schema.Text},
			}},
		}},
	}}
	for range 2 {
		results, err := schema.Ensure(ctx, db, []schema.Table{notes})
		if err != nil {
			fmt.Println(err)
			return
		}
		schema.Print(os.Stdout, results, false)
	}
	// Output:
	// Migrated table 'tandem_notes' from version 0 to 1
	// Table 'tandem_notes' is up to date (version 1)
}
