// Command tour is the README's five-minute tour of the registry, whole:
// one instance registers and heartbeats, and a cache reads the cap.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/schema"
	"github.com/tandem-go/tandem/services"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "tour:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "tandem-tour-") // a real service: its data directory
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := dialect.Open(ctx, "sqlite://"+filepath.Join(dir, "app.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := schema.Ensure(ctx, db, services.Tables()); err != nil {
		return err
	}

	// A NATS server in the process; a real service connects to its own.
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return err
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		return errors.New("NATS is not ready")
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		return err
	}
	defer nc.Close()

	reg, err := services.New(ctx, db, services.WithNATS(nc))
	if err != nil {
		return err
	}
	defer reg.Close()
	err = reg.Register(ctx, services.Instance{ID: "vol-1", Service: "volume", Release: 42,
		APIs: []services.API{{Name: "volume", Current: services.MustParseVersion("3.2"),
			Oldest: services.MustParseVersion("3.0")}}})
	if err != nil {
		return err
	}
	alive, stop := context.WithCancel(ctx)
	defer stop()
	heartbeats := make(chan error, 1)
	go func() { heartbeats <- services.KeepAlive(alive, reg, "vol-1", 5*time.Second, nil) }()

	cache, err := services.NewCache(ctx, reg, nc) // follows changes announced on NATS
	if err != nil {
		return err
	}
	defer cache.Close()
	capVersion, ok := cache.Cap("volume") // no I/O: safe on every RPC
	fmt.Printf("volume: cap %s (known: %t), floor %d\n", capVersion, ok, cache.Floor())

	stop()
	if err := <-heartbeats; err != nil {
		return err
	}
	return reg.Deregister(ctx, "vol-1")
}
