package stacks_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/move"

	"example.com/stacks"
	pb "example.com/stacks/stackspb"
)

// at is a phase source fixed at one phase, for the example; a service
// passes its *dualwrite.Tracker.
type at move.Phase

func (p at) Begin(string) (move.Phase, func()) { return move.Phase(p), func() {} }

func (p at) BeginWrite(string) (move.Phase, func(), error) { return move.Phase(p), func() {}, nil }

// A resource created before the move and one created during it, read in
// one SELECT each, however the phase splits them across the two tables.
// The old one has nothing in resource_data until the backfill copies it,
// which is why read-new's gate waits for a verified backfill.
func ExampleStore() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "stacks-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "stacks.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	db.MustExec(stacks.CreateTableSQL)
	// What tandem's write-both step creates for the move.
	db.MustExec(`CREATE TABLE resource_data (resource_id VARCHAR(64) NOT NULL PRIMARY KEY REFERENCES resource (id), data TEXT)`)

	legacy, err := stacks.NewStore(db, at(move.Legacy))
	if err != nil {
		fmt.Println(err)
		return
	}
	writeBoth, err := stacks.NewStore(db, at(move.WriteBoth))
	if err != nil {
		fmt.Println(err)
		return
	}
	readNew, err := stacks.NewStore(db, at(move.ReadNew))
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := legacy.Create(ctx, &pb.Resource{Id: "old", Name: "server", Properties: `{"flavor": "small"}`}); err != nil {
		fmt.Println(err)
		return
	}
	if err := writeBoth.Create(ctx, &pb.Resource{Id: "new", Name: "volume", Properties: `{"size": 10}`}); err != nil {
		fmt.Println(err)
		return
	}
	for _, id := range []string{"old", "new"} {
		a, errA := writeBoth.Get(ctx, id)
		b, errB := readNew.Get(ctx, id)
		fmt.Printf("%s: write-both reads %q (%v), read-new reads %q (%v)\n", id, a.GetProperties(), errA, b.GetProperties(), errB)
	}
	// Output:
	// old: write-both reads "{\"flavor\": \"small\"}" (<nil>), read-new reads "" (<nil>)
	// new: write-both reads "{\"size\": 10}" (<nil>), read-new reads "{\"size\": 10}" (<nil>)
}
