package services_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

func Example() {
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
	v31, v32 := services.MustParseVersion("3.1"), services.MustParseVersion("3.2")
	_ = reg.Register(ctx, services.Instance{ID: "vol-a", Service: "volume", Release: 41,
		APIs: []services.API{{Name: "volume", Current: v31}}})
	_ = reg.Register(ctx, services.Instance{ID: "vol-b", Service: "volume", Release: 42,
		APIs: []services.API{{Name: "volume", Current: v32}}})

	floor, _ := reg.Floor(ctx)
	caps, _ := reg.Caps(ctx)
	fmt.Println("floor:", floor.Release, "held by", floor.Holders[0].ID)
	fmt.Println("volume cap:", caps["volume"].Version)

	_ = reg.Delete(ctx, "vol-a") // the operator says vol-a will not return
	floor, _ = reg.Floor(ctx)
	fmt.Println("floor:", floor.Release)
	// Output:
	// floor: 41 held by vol-a
	// volume cap: 3.1
	// floor: 42
}

func ExampleParseVersion() {
	v, err := services.ParseVersion("3.15")
	fmt.Println(v, err, v.Less(services.MustParseVersion("3.2")))
	_, err = services.ParseVersion("3")
	fmt.Println(err)
	// Output:
	// 3.15 <nil> false
	// invalid API version "3": want major.minor, like 1.2
}

// Every subject of a cluster carries its identity (Registry.Cluster), so
// clusters that share one NATS never hear each other.
func ExampleChangedSubject() {
	const cluster = "3f9c2a7d10b4e865" // what `tandem services cluster` prints
	fmt.Println(services.ChangedSubject(cluster))
	fmt.Println(services.RemoteSubject(cluster) + ".register")
	fmt.Println(services.CheckCluster("prod.eu") != nil)
	// Output:
	// tandem.3f9c2a7d10b4e865.services.changed
	// tandem.3f9c2a7d10b4e865.registry.register
	// true
}

// Each process start that registers an id is a new incarnation. A live
// holder is refused; once it is gone (here its registry closes, as a crash
// would end its session) the next one registers at once, and a heartbeat
// of the old incarnation is told it is fenced.
func ExampleRegistry_Register_incarnations() {
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
	first, _ := services.New(ctx, db)
	second, _ := services.New(ctx, db)
	defer second.Close()
	in := services.Instance{ID: "vol-a", Service: "volume", Host: "node-1", Release: 42}

	_ = first.Register(ctx, in)
	err = second.Register(ctx, in)
	fmt.Println("while the first lives:", errors.Is(err, services.ErrDuplicateInstance))

	_ = first.Close() // the first process dies
	_ = second.Register(ctx, in)
	now, _ := second.Get(ctx, "vol-a")
	past, _ := second.PastIncarnations(ctx)
	fmt.Println("incarnation", now.Incarnation, "superseded", past[0].Incarnation)

	err = first.Heartbeat(ctx, "vol-a", services.Heartbeat{})
	fmt.Println("the first is fenced:", errors.Is(err, services.ErrFenced))
	// Output:
	// while the first lives: true
	// incarnation 2 superseded 1
	// the first is fenced: true
}
