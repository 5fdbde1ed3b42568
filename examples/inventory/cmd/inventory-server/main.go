// Command inventory-server serves the inventory example API over NATS, in
// memory, at any of its versions, so a rolling upgrade can be played by
// hand: start one at -api 1.1 and one at 1.2, and watch the cap.
//
//	inventory-server [-nats URL] [-db DSN] [-id ID] [-release N] [-api 1.2]
//
// Without -nats it embeds a NATS server and prints its URL. With -db it
// registers in the tandem registry in that database (create the tables
// first with `tandem schema ensure`) and heartbeats. SIGINT or SIGTERM
// drains: requests in flight finish, then the instance deregisters.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
	"github.com/tandem-go/tandem/services"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inventory-server:", err)
		os.Exit(1)
	}
}

func run() error {
	natsURL := flag.String("nats", "", "NATS server URL (default: embed one)")
	dsn := flag.String("db", "", "registry database DSN, e.g. sqlite:///tmp/tandem.db (default: do not register)")
	host, _ := os.Hostname()
	id := flag.String("id", fmt.Sprintf("inventory-%s-%d", host, os.Getpid()), "instance id in the registry")
	release := flag.Int64("release", 1, "application release reported to the registry")
	apiVersion := flag.String("api", "", "serve the API as this version (default: the .proto's, "+inventory.API.Current().String()+")")
	verbose := flag.Bool("v", false, "log to stderr")
	flag.Parse()

	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	api := inventory.API
	if *apiVersion != "" {
		v, err := services.ParseVersion(*apiVersion)
		if err != nil {
			return err
		}
		if api, err = inventory.NewAPI(rpcver.WithCurrent(v)); err != nil {
			return err
		}
	}
	url := *natsURL
	if url == "" {
		ns, err := natstest.Start(0, "")
		if err != nil {
			return err
		}
		defer ns.Stop()
		url = ns.ClientURL()
		fmt.Println("embedded NATS at", url)
	}
	nc, err := nats.Connect(url, nats.Name("inventory-server"))
	if err != nil {
		return fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()

	opts := []rpcver.ServerOption{rpcver.WithLogger(log)}
	if *dsn != "" {
		db, err := dialect.Open(ctx, *dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		reg, err := services.New(ctx, db, services.WithNATS(nc), services.WithLogger(log))
		if err != nil {
			return err
		}
		opts = append(opts, rpcver.WithRegistry(reg, services.Instance{ID: *id, Service: "inventory", Host: host, Release: *release}, 5*time.Second),
			// Deleted or superseded: the server has withdrawn its
			// endpoints; exit rather than linger.
			rpcver.WithOnFenced(func(error) { stop() }))
	}
	srv, err := rpcver.NewServer(nc, api, opts...)
	if err != nil {
		return err
	}
	if err := inventory.Handle(srv, inventory.NewMemStore()); err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	fmt.Printf("serving %s %s to %s as %s\n", api.Name(), api.Oldest(), api.Current(), *id)
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if err := srv.FencedErr(); err != nil {
		return err // says why: deleted, or which process took the id over
	}
	fmt.Println("drained and deregistered")
	return nil
}
