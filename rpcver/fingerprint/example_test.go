package fingerprint_test

import (
	"fmt"

	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/rpcver/fingerprint"
)

// Check the inventory API against its committed record.
func Example() {
	cur, err := fingerprint.Compute(inventory.API.Service())
	if err != nil {
		panic(err)
	}
	rec, err := fingerprint.Load("../../examples/inventory/testdata/fingerprints.json")
	if err != nil {
		panic(err)
	}
	fmt.Println("version", cur.Version, "messages", len(cur.Messages), "problems", len(fingerprint.Check(cur, rec)))
	for _, f := range cur.Messages["inventory.v1.Item"].Fields[4:6] {
		fmt.Println(f.Number, f.Name, f.Type, f.Cardinality, f.Since)
	}
	// Output:
	// version 1.2 messages 7 problems 0
	// 5 price_cents int64 singular 1.1
	// 6 labels map<string,string> map 1.1
}
