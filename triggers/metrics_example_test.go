package triggers_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/triggers"
)

// Whether a move's triggers are present and as generated, as metrics.
func ExampleNewCollector() {
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.MustExec(`CREATE TABLE items (id INTEGER PRIMARY KEY, price_cents INTEGER, price_mills INTEGER)`)
	set, _ := triggers.ForMove(db.Engine(), move.Move{
		Name: "price", Table: "items", Key: []string{"id"},
		Old: "price_cents", New: move.Target{Column: "price_mills"},
		Forward:  move.Transform{SQL: "{value} * 10"},
		Backward: move.Transform{SQL: "{value} / 10"},
		Triggers: true,
	})
	prom := prometheus.NewRegistry()
	prom.MustRegister(triggers.NewCollector(db, set))
	present := func() float64 {
		mfs, _ := prom.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "tandem_triggers_present" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	fmt.Println("present before install:", present())
	_, _ = triggers.Install(ctx, db, set)
	fmt.Println("present after install:", present())
	// Output:
	// present before install: 0
	// present after install: 1
}
