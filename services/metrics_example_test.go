package services_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

// A cache's metrics on the application's own registry: the floor and the
// instances by release and state, read from the cached snapshot.
func ExampleWithMetrics() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "tandem-example")
	defer os.RemoveAll(dir)
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		fmt.Println(err)
		return
	}
	reg, _ := services.New(ctx, db)
	_ = reg.Register(ctx, services.Instance{ID: "vol-a", Service: "volume", Release: 41})
	_ = reg.Register(ctx, services.Instance{ID: "vol-b", Service: "volume", Release: 42})

	prom := prometheus.NewRegistry()
	cache, err := services.NewCache(ctx, reg, nil, services.WithTTL(time.Minute), services.WithMetrics(prom))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	mfs, _ := prom.Gather()
	for _, mf := range mfs {
		switch mf.GetName() {
		case "tandem_services_floor":
			fmt.Println("floor", mf.GetMetric()[0].GetGauge().GetValue())
		case "tandem_services_instances":
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				fmt.Println("release", labels["release"], labels["state"], m.GetGauge().GetValue())
			}
		}
	}
	// Output:
	// floor 41
	// release 41 up 1
	// release 42 up 1
}
