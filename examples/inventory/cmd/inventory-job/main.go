// Command inventory-job applies a price list to the inventory example's
// items table: a writer that serves no RPC, the way a cron job or a queue
// worker is, and that takes part in the move of items.price all the same.
//
//	inventory-job -db DSN -prices FILE [-every 1m | -once] [-id ID] [-release N]
//	              [-nats URL] [-move price_cents] [-plan FILE] [-heartbeat 5s] [-refresh 5s]
//
// FILE holds one "ID CENTS" pair a line ('#' starts a comment); each pass
// sets those items' prices through the move's router at the phase the job
// acts on, one transaction per item, and skips ids that have no item.
//
// It registers as an instance of service inventory-job and heartbeats the
// phase it acts on, like the server: every process that writes a moved
// column must, or the gates cannot see it, and a job still writing the old
// column only would be lost behind the backfill. For the same reason a job
// of a release too old for the ledger's phase refuses to start (with the
// release to run instead). While the operator has frozen the move's writes
// (tandem freeze), a pass counts the prices refused apart from failures
// and goes on; a pass after the thaw applies them. -once makes one pass and leaves (a cron job);
// otherwise it passes every -every until SIGINT or SIGTERM, finishing the
// item in hand before it leaves.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/examples/inventory/node"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "inventory-job:", err)
		os.Exit(1)
	}
}

func run() error {
	dsn := flag.String("db", "", "database DSN (required), e.g. sqlite:///tmp/inventory.db")
	prices := flag.String("prices", "", "price list: one \"ID CENTS\" a line (required)")
	every := flag.Duration("every", time.Minute, "time between passes")
	once := flag.Bool("once", false, "make one pass and exit")
	host, _ := os.Hostname()
	id := flag.String("id", "inventory-job-"+host, "instance id in the registry (keep it across restarts)")
	release := flag.Int64("release", 41, "application release: decides which phases of the move this build ships")
	natsURL := flag.String("nats", "", "NATS server URL, to hear at once when the instance is fenced (optional)")
	moveName := flag.String("move", "price_cents", "the move of items.price")
	plan := flag.String("plan", "", "plan file declaring the moves (default: the ledger's, else the built-in declaration)")
	heartbeat := flag.Duration("heartbeat", 5*time.Second, "heartbeat interval")
	refresh := flag.Duration("refresh", 5*time.Second, "how often to reread the ledger")
	verbose := flag.Bool("v", false, "log to stderr")
	flag.Parse()
	if *dsn == "" || *prices == "" {
		return errors.New("-db and -prices are required: inventory-job -db sqlite:///tmp/inventory.db -prices prices.txt")
	}
	if _, err := readPrices(*prices); err != nil {
		return err // bad input: refuse before registering anywhere
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var nc *nats.Conn
	if *natsURL != "" {
		var err error
		if nc, err = nats.Connect(*natsURL, nats.Name("inventory-job "+*id), nats.MaxReconnects(-1)); err != nil {
			return fmt.Errorf("connect to NATS at %s: %w", *natsURL, err)
		}
		defer nc.Close()
	}
	n, err := node.Start(ctx, node.Config{DSN: *dsn, ID: *id, Service: "inventory-job", Release: *release,
		Move: *moveName, Plan: *plan, Heartbeat: *heartbeat, Refresh: *refresh, NATS: nc, Log: log})
	if err != nil {
		return err
	}
	fmt.Printf("job %s, release %d, registered\n", *id, *release)
	var passErr error
	for pass := 1; ; pass++ {
		if passErr = apply(ctx, n, *moveName, *prices, pass); passErr != nil || *once {
			break
		}
		select {
		case <-ctx.Done():
		case <-n.Done():
		case <-time.After(*every):
			continue
		}
		break
	}
	// The loop has returned: nothing more begins, so there is nothing left
	// to drain before the tracker's wait.
	lctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(passErr, n.Leave(lctx, nil))
	if cause := n.Err(); cause != nil {
		return errors.Join(cause, err)
	}
	if err != nil {
		return err
	}
	fmt.Println("left the registry")
	return nil
}

// apply makes one pass over the price list. A signal stops it between
// items, never inside one's transaction.
func apply(ctx context.Context, n *node.Node, moveName, path string, pass int) error {
	list, err := readPrices(path)
	if err != nil {
		return err
	}
	applied, unknown, refused := 0, 0, 0
	var frozen *dualwrite.FrozenError
	for _, p := range list {
		if ctx.Err() != nil {
			break
		}
		octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		err := n.Store.SetPrice(octx, p.id, p.cents)
		cancel()
		switch {
		case errors.Is(err, inventory.ErrNotFound):
			unknown++
		case errors.As(err, &frozen):
			// The operator froze the move's writes: not a failure. The
			// price is applied on a pass after the thaw.
			refused++
		case err != nil:
			return fmt.Errorf("pass %d: %w", pass, err)
		default:
			applied++
		}
	}
	msg := fmt.Sprintf("pass %d: %d prices applied, %d unknown items", pass, applied, unknown)
	if refused > 0 {
		msg += fmt.Sprintf(", %d refused while writes are frozen (%s; a later pass applies them)", refused, frozen.Reason)
	}
	fmt.Printf("%s, acting on %s\n", msg, n.Tracker.Phase(moveName))
	return nil
}

type price struct {
	id    string
	cents int64
}

func readPrices(path string) ([]price, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("price list: %w", err)
	}
	defer f.Close()
	var out []price
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("price list %s:%d: want \"ID CENTS\", got %q", path, line, sc.Text())
		}
		cents, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil || cents < 0 {
			return nil, fmt.Errorf("price list %s:%d: %q is not a price in cents (a whole number, 0 or more)", path, line, fields[1])
		}
		out = append(out, price{fields[0], cents})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("price list %s: %w", path, err)
	}
	return out, nil
}
