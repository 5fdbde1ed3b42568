package migfile_test

import (
	"fmt"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/migfile"
	"github.com/tandem-go/tandem/move"
)

func ExampleGenerate() {
	m := move.Move{Name: "price_cents", Table: "products", Key: []string{"id"}, Old: "price",
		New:     move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "BIGINT"}},
		Forward: move.Transform{SQL: "CAST(ROUND({value} * 100) AS BIGINT)"}}
	files, err := migfile.Generate(m, dialect.Postgres, move.WriteBoth, migfile.Migrate, migfile.WithVersion("00042"))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range files {
		fmt.Println(f.Name)
	}
	fmt.Print(files[1].Content)
	// Output:
	// 00042_tandem_price_cents_write_both.up.sql
	// 00042_tandem_price_cents_write_both.down.sql
	// -- tandem move price_cents: undoing write-both on postgres, for golang-migrate.
	// -- Undoes write-both: run it only once `tandem moves advance price_cents --to legacy` took the move back.
	//
	// -- price_cents/undo-write-both/1-drop-column: drop column products.price_cents
	// ALTER TABLE "products" DROP COLUMN "price_cents";
}
