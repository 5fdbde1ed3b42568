package move_test

import (
	"errors"
	"fmt"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
)

func Example() {
	m := move.Move{
		Name:     "price_cents",
		Table:    "products",
		Key:      []string{"id"},
		Old:      "price",
		New:      move.Target{Column: "price_cents", Type: move.ColumnType{SQL: "BIGINT"}},
		Forward:  move.Transform{SQL: "CAST({value} * 100 AS INTEGER)", Dialects: map[dialect.Name]string{dialect.MySQL: "CAST({value} * 100 AS SIGNED)"}},
		Backward: move.Transform{SQL: "{value} / 100.0"},
		Releases: move.Releases{WriteBoth: 42, ReadNew: 43, WriteNew: 44, Contracted: 45},
	}
	fmt.Println(m.Validate())
	expr, _ := m.Forward.Render(dialect.Postgres, `NEW."price"`)
	fmt.Println(expr)
	expr, _ = m.Forward.Render(dialect.MySQL, "t.`price`")
	fmt.Println(expr)
	fmt.Println(m.Releases.Highest(43))
	// Output:
	// <nil>
	// (CAST(NEW."price" * 100 AS INTEGER))
	// (CAST(t.`price` * 100 AS SIGNED))
	// read-new
}

func ExampleParsePhase() {
	p, err := move.ParsePhase("write-both")
	fmt.Println(p, err, p.WritesOld(), p.WritesNew(), p.ReadsNew())
	_, err = move.ParsePhase("sideways")
	fmt.Println(errors.Is(err, move.ErrBadPhase))
	// Output:
	// write-both <nil> true true false
	// true
}

func ExampleMove_Validate() {
	m := move.Move{Name: "m", Table: `users"; DROP TABLE users`, Key: []string{"id"}, Old: "a", New: move.Target{Column: "b"}}
	err := m.Validate()
	fmt.Println(errors.Is(err, move.ErrInvalid), errors.Is(err, dialect.ErrBadIdentifier))
	// Output:
	// true true
}
