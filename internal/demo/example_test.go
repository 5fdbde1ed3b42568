package demo_test

import (
	"context"
	"fmt"

	"github.com/tandem-go/tandem/internal/demo"
)

// The fast demo on SQLite with an embedded NATS server, without the
// timeline: both moves end contracted, and nothing failed, was lost or
// read wrong.
func ExampleRun() {
	s, err := demo.Run(context.Background(), demo.Config{Fast: true, Instances: 2, Clients: 1, Workers: 1})
	if err != nil {
		panic(err)
	}
	for _, m := range s.Moves {
		fmt.Printf("%s (triggers %v): %s\n", m.Name, m.Triggers, m.Phase)
	}
	fmt.Println("failed", s.Failed, "lost", s.LostWrites, "wrong reads", s.WrongReads, "ok", s.OK())
	// Output:
	// items_price_cents (triggers false): contracted
	// catalog_price_cents (triggers true): contracted
	// failed 0 lost 0 wrong reads 0 ok true
}
