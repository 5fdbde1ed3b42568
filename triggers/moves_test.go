package triggers_test

import (
	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
)

// Prices move from cents to mills (tenths of a cent): forward multiplies,
// backward divides, with MySQL's integer division as an override.
var (
	toMills   = move.Transform{SQL: "{value} * 10"}
	fromMills = move.Transform{SQL: "{value} / 10", Dialects: map[dialect.Name]string{dialect.MySQL: "{value} DIV 10"}}
)

// testMoves are the moves the golden files and the engine tests share.
var testMoves = map[string]move.Move{
	// Within one table, with transforms.
	"same_xform": {
		Name: "price_mills", Table: "items", Key: []string{"id"},
		Old: "price_cents", New: move.Target{Column: "price_mills"},
		Forward: toMills, Backward: fromMills, Triggers: true,
	},
	// Within one table, copied as is.
	"same_ident": {
		Name: "label", Table: "items", Key: []string{"id"},
		Old: "label", New: move.Target{Column: "title"}, Triggers: true,
	},
	// To another table keyed by a composite key, with transforms.
	"cross_xform": {
		Name: "order_price", Table: "orders", Key: []string{"region", "id"},
		Old:     "price_cents",
		New:     move.Target{Table: "order_prices", Key: []string{"order_region", "order_id"}, Column: "price_mills"},
		Forward: toMills, Backward: fromMills, Triggers: true,
	},
	// To another table, copied as is, with names that are reserved words.
	"cross_reserved": {
		Name: "select_move", Table: "order", Key: []string{"group"},
		Old:      "from",
		New:      move.Target{Table: "where", Key: []string{"group"}, Column: "to"},
		Triggers: true,
	},
}
