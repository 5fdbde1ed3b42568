// Command inventory-server serves the inventory example API over NATS at
// any of its versions, so a rolling upgrade can be played by hand or by a
// script: start some at -release 41, roll them one at a time to 42, 43 and
// 44 while `tandem moves advance` takes items.price to price_cents.
//
//	inventory-server [-nats URL] [-db DSN] [-id ID] [-release N] [-api 1.2]
//	                 [-move price_cents] [-plan FILE] [-heartbeat 5s] [-refresh 5s]
//
// Without -nats it embeds a NATS server (nats-server's own package) and
// prints its URL. Without -db it keeps items in memory and registers
// nowhere. With -db the items live in that database's items table, created
// at start if missing, and the process takes part in moves like any
// application writer (see package node): it registers, heartbeats the
// phase it acts on, reads and writes the price through a dualwrite router
// at that phase, and refuses to start when the ledger is past what its
// release ships. The move comes from -plan, else from the ledger, else the
// built-in declaration (42 write-both, 43 read-new, 44 write-new).
//
// SIGINT or SIGTERM drains: the instance reports draining, its endpoints
// stop taking requests and the ones in flight finish, the operations they
// began end, and only then does it deregister.
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

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/examples/inventory/node"
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
	dsn := flag.String("db", "", "database DSN, e.g. sqlite:///tmp/inventory.db (default: items in memory, no registry)")
	host, _ := os.Hostname()
	id := flag.String("id", fmt.Sprintf("inventory-%s-%d", host, os.Getpid()), "instance id in the registry (keep it across restarts)")
	release := flag.Int64("release", 41, "application release: decides which phases of the move this build ships")
	apiVersion := flag.String("api", "", "serve the API as this version (default: the .proto's, "+inventory.API.Current().String()+")")
	moveName := flag.String("move", "price_cents", "the move of items.price")
	plan := flag.String("plan", "", "plan file declaring the moves (default: the ledger's, else the built-in declaration)")
	heartbeat := flag.Duration("heartbeat", 5*time.Second, "heartbeat interval")
	refresh := flag.Duration("refresh", 5*time.Second, "how often to reread the ledger")
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
		ns, err := embedNATS()
		if err != nil {
			return err
		}
		defer ns.Shutdown()
		url = ns.ClientURL()
		fmt.Println("embedded NATS at", url)
	}
	nc, err := nats.Connect(url, nats.Name("inventory-server "+*id), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	defer nc.Close()

	if *dsn == "" {
		srv, err := rpcver.NewServer(nc, api, rpcver.WithLogger(log))
		if err != nil {
			return err
		}
		if err := inventory.Handle(srv, inventory.NewMemStore()); err != nil {
			return err
		}
		if err := srv.Start(ctx); err != nil {
			return err
		}
		fmt.Printf("serving %s %s to %s as %s, in memory\n", api.Name(), api.Oldest(), api.Current(), *id)
		<-ctx.Done()
		return shutdown(srv.Shutdown)
	}

	n, err := node.Start(ctx, node.Config{DSN: *dsn, ID: *id, Service: "inventory", Release: *release,
		APIs: []services.API{api.Registration()}, Move: *moveName, Plan: *plan,
		Heartbeat: *heartbeat, Refresh: *refresh, NATS: nc, Log: log})
	if err != nil {
		return err
	}
	// The instance registers and heartbeats through the node, not the
	// server (no rpcver.WithRegistry), so that deregistering comes after
	// the tracker's operations have ended: see node.Leave.
	srv, err := rpcver.NewServer(nc, api, rpcver.WithLogger(log), rpcver.WithCluster(n.Reg.Cluster()))
	if err == nil {
		err = inventory.Handle(srv, inventory.RetryStore{Store: n.Store})
	}
	if err == nil {
		err = srv.Start(ctx)
	}
	if err != nil {
		return errors.Join(err, shutdown(func(ctx context.Context) error { return n.Leave(ctx, nil) }))
	}
	fmt.Printf("serving %s %s to %s as %s, release %d, %s\n", api.Name(), api.Oldest(), api.Current(), *id, *release, phases(n))
	select {
	case <-ctx.Done():
	case <-n.Done():
	}
	err = shutdown(func(ctx context.Context) error { return n.Leave(ctx, srv.Shutdown) })
	if cause := n.Err(); cause != nil {
		return errors.Join(cause, err) // fenced (says who holds the id now) or too old (says what to run)
	}
	if err != nil {
		return err
	}
	fmt.Println("drained and deregistered")
	return nil
}

// shutdown runs leave with a deadline of its own: the signal's context is
// done already.
func shutdown(leave func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return leave(ctx)
}

func phases(n *node.Node) string {
	out := ""
	for name, p := range n.Tracker.Phases() {
		out += fmt.Sprintf("move %s at %s", name, p)
	}
	return out
}

// embedNATS runs a NATS server in the process on a free loopback port.
func embedNATS() (*server.Server, error) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("embedded NATS: not ready after 10s")
	}
	return ns, nil
}
