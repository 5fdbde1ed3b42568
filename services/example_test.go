package services_test

import (
	"context"
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
