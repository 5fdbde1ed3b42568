package node_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/examples/inventory/node"
	"github.com/tandem-go/tandem/services"
)

// A writer that serves no RPC (a job) joins the cluster, reports the phase
// it acts on, and leaves in order.
func ExampleStart() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "node-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	n, err := node.Start(ctx, node.Config{DSN: "sqlite://" + filepath.Join(dir, "app.db"),
		ID: "job-1", Service: "inventory-job", Release: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := n.Reg.Get(ctx, "job-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(in.Service, in.Release, in.State, in.Phases)
	// A job's drain is its loop returning; nothing is left to drain here.
	if err := n.Leave(ctx, nil); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("left:", in.ID, services.StateDeleted)
	// Output:
	// inventory-job 42 up map[price_cents:legacy]
	// left: job-1 deleted
}
