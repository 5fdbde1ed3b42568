package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/internal/demo"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.demoCommand() })
}

func (a *app) demoCommand() *cobra.Command {
	var cfg demo.Config
	var serveAddr string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Roll the inventory example through three releases under live traffic, and check every request",
		Long: `demo starts several instances of the inventory example at release 41 and
keeps RPC and database load on them while it restarts them one at a time to
releases 42, 43 and 44. Meanwhile it moves items.price to items.price_cents
through every phase without triggers, and catalog.price to
catalog.price_cents with triggers: backfill, verify, advance as each gate
opens, finalize, contract. It prints a timeline, then a summary of requests
sent, failed and retried, writes checked and lost, wrong reads, ghost
writes (applied after their caller saw them fail) and every key's history
checked for linearizability, and exits 1 when anything failed, was lost,
read wrong, was applied after its caller gave up, or a history is not
linearizable.

By default it runs in a SQLite file in a temporary directory with an
embedded NATS server, for about a minute. Give --db to run on PostgreSQL or
MySQL/MariaDB (it creates a fresh database there and drops it afterwards)
and --nats to use a NATS server of your own. The environment's TANDEM_DB
and TANDEM_NATS are ignored here: the demo never touches a database you did
not name on its command line.`,
		Example: `  tandem demo
  tandem demo --fast --chaos
  tandem demo --serve 127.0.0.1:8080
  tandem demo --db 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
  tandem demo --db 'mysql://root@127.0.0.1:3306/test' --chaos`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("db") {
				cfg.DSN = a.dsn
			}
			if cmd.Flags().Changed("nats") {
				if _, err := a.natsSecrets(); err != nil {
					return err
				}
				cfg.NATSURL = a.natsURL
			}
			if serveAddr != "" {
				ln, err := net.Listen("tcp", serveAddr)
				if err != nil {
					return &usageError{fmt.Errorf("--serve %s: %w", serveAddr, err)}
				}
				defer ln.Close()
				cfg.Watch = a.demoWatch(ln)
			}
			cfg.Logger = a.logger()
			cfg.Out = a.stdout
			if a.json {
				cfg.Out = io.Discard
			}
			s, err := demo.Run(cmd.Context(), cfg)
			if errors.Is(err, demo.ErrConfig) || errors.Is(err, demo.ErrNotEmpty) {
				return &usageError{err}
			}
			if err != nil {
				if s.Engine != "" && !a.json {
					s.WriteText(a.stdout) // interrupted: what ran is still worth seeing
				}
				return err
			}
			if a.json {
				if err := a.printJSON(demoView(s)); err != nil {
					return err
				}
			} else {
				s.WriteText(a.stdout)
			}
			if !s.OK() {
				return fmt.Errorf("demo failed: %d failed requests, %d lost writes, %d wrong reads, %d ghost writes, %d keys whose history is not linearizable, %d problems",
					s.Failed, s.LostWrites, s.WrongReads, s.GhostWrites, len(s.Histories.Failures)+len(s.Histories.Undecided), len(s.Problems))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&cfg.Fast, "fast", false, "run in a few seconds (for tests and CI)")
	f.BoolVar(&cfg.Chaos, "chaos", false, "also kill instances at random and restart the embedded NATS server")
	f.IntVar(&cfg.Instances, "instances", 3, "instances of the inventory service")
	f.IntVar(&cfg.Clients, "clients", 4, "RPC client goroutines")
	f.IntVar(&cfg.Workers, "workers", 2, "database worker goroutines")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed for chaos (0: random, printed)")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the demo's database afterwards")
	f.StringVar(&serveAddr, "serve", "", "serve the live page of the rollout (as tandem serve does) on this address, such as 127.0.0.1:8080, while the demo runs")
	return cmd
}

// demoWatch serves the live page on ln, as tandem serve does, for the
// demo's database and NATS while the demo runs.
func (a *app) demoWatch(ln net.Listener) func(ctx context.Context, w demo.Watched) (func(), error) {
	return func(ctx context.Context, w demo.Watched) (func(), error) {
		// No plan: the demo's moves are in its ledger.
		sub := &app{dsn: w.DSN, natsURL: w.NATSURL, missingAfter: w.MissingAfter, command: "status", started: a.started, logFormat: a.logFormat, log: a.log,
			verbose: a.verbose, stdout: io.Discard, stderr: a.stderr}
		reg, db, done, err := sub.registry(ctx)
		if err != nil {
			return nil, err
		}
		nc, err := sub.connectNATS()
		if err != nil {
			done()
			return nil, err
		}
		srv, err := sub.newStatusServer(ctx, reg, db, nc)
		if err != nil {
			nc.Close()
			done()
			return nil, err
		}
		sctx, cancel := context.WithCancel(ctx)
		served := make(chan struct{})
		go func() {
			defer close(served)
			if err := srv.Serve(sctx, ln); err != nil {
				fmt.Fprintln(a.stderr, "tandem demo: serve:", err)
			}
		}()
		if !a.json {
			fmt.Fprintf(a.stdout, "watch the rollout at http://%s/ (it stops with the demo)\n", ln.Addr())
		}
		return func() {
			cancel()
			<-served
			srv.Close()
			nc.Close()
			done()
		}, nil
	}
}
