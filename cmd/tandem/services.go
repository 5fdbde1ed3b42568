package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/services"
)

// registry opens the database and the registry, announcing changes on NATS
// when --nats is set. close releases both.
func (a *app) registry(ctx context.Context) (reg *services.Registry, db *dialect.DB, closeFn func(), err error) {
	db, err = a.openDB(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := []services.Option{services.WithLogger(a.logger()), services.WithMissingAfter(a.missingAfter)}
	var nc *nats.Conn
	if a.natsURL != "" {
		nc, err = a.connectNATS()
		if err != nil {
			db.Close()
			return nil, nil, nil, err
		}
		opts = append(opts, services.WithNATS(nc))
	}
	closeFn = func() {
		if nc != nil {
			_ = nc.Drain()
		}
		db.Close()
	}
	reg, err = services.New(ctx, db, opts...)
	if errors.Is(err, services.ErrInvalid) {
		closeFn()
		return nil, nil, nil, &usageError{fmt.Errorf("--missing-after %s: %w; for example: tandem --missing-after 90s services list", a.missingAfter, err)}
	}
	if err != nil {
		closeFn()
		return nil, nil, nil, err
	}
	return reg, db, closeFn, nil
}

// errNATSUnreachable means the NATS server of --nats could not be reached
// (exit 4, as for the database, but named for what failed).
var errNATSUnreachable = errors.New("NATS unreachable")

// connectNATS connects to --nats. A URL that does not parse is bad input;
// an unreachable server is exit 4. Neither error shows the URL's user,
// password or token: only its scheme, host and port.
func (a *app) connectNATS() (*nats.Conn, error) {
	secrets, err := a.natsSecrets()
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(a.natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		return nil, &natsError{url: dialect.RedactURL(a.natsURL), err: dialect.Scrub(err, secrets...)}
	}
	return nc, nil
}

// natsSecrets checks every URL of --nats and returns the secrets they
// carry, for scrubbing errors; a URL that does not parse is bad input.
func (a *app) natsSecrets() ([]string, error) {
	var secrets []string
	for _, one := range strings.Split(a.natsURL, ",") {
		u, err := dialect.ParseServerURL(strings.TrimSpace(one))
		if err != nil {
			return nil, fmt.Errorf("--nats: %w", err)
		}
		secrets = append(secrets, dialect.URLSecrets(u)...)
	}
	return secrets, nil
}

// natsError is a NATS server that could not be reached; url is redacted.
type natsError struct {
	url string
	err error
}

func (e *natsError) Error() string {
	return fmt.Sprintf("cannot reach NATS at %s: %v (is the NATS server running and --nats right?)", e.url, e.err)
}

func (e *natsError) Unwrap() []error { return []error{errNATSUnreachable, e.err} }

// withRegistry runs fn on the registry, opened for one command.
func (a *app) withRegistry(ctx context.Context, fn func(reg *services.Registry) error) error {
	reg, _, done, err := a.registry(ctx)
	if err != nil {
		return err
	}
	defer done()
	return fn(reg)
}

func (a *app) servicesCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "services", Short: "The services registry: instances, the floor and the caps"}

	var (
		all      bool
		q        services.ListQuery
		stateArg string
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List instances (missing is derived from heartbeat age)",
		Long: `List instances ordered by service and id (missing is derived from heartbeat
age). --service, --release and --state keep only the matching ones; --limit
pages the listing, and each page that has a next one ends with the command
that prints it (--after with the page's cursor, the same filters kept).`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q.All = all
			if stateArg != "" {
				st, err := services.ParseState(stateArg)
				if err != nil {
					return &usageError{fmt.Errorf("--state: %w; for example: tandem services list --state missing", err)}
				}
				q.State = st
			}
			if q.Limit < 0 || q.Limit > services.MaxPageSize {
				return &usageError{fmt.Errorf("--limit %d: a page holds 1 to %d instances (0, the default, lists all of them); for example: tandem services list --limit 500", q.Limit, services.MaxPageSize)}
			}
			if q.Release < 0 {
				return &usageError{fmt.Errorf("--release %d: a release is a positive integer; for example: tandem services list --release 42", q.Release)}
			}
			return a.withRegistry(cmd.Context(), func(reg *services.Registry) error {
				p, err := reg.ListPage(cmd.Context(), q)
				if errors.Is(err, services.ErrInvalid) {
					return &usageError{fmt.Errorf("%w; to list from the start: %s", err, listCommand(q, ""))}
				}
				if err != nil {
					return err
				}
				ins := p.Instances
				return a.emit(instancesDoc{Instances: instancesView(ins), Next: strOrNil(p.Next)}, func(w io.Writer) {
					if len(ins) == 0 {
						if q == (services.ListQuery{All: all}) {
							fmt.Fprintln(w, "No instances registered.")
						} else {
							fmt.Fprintln(w, "No instances match.")
						}
						return
					}
					printInstances(w, ins, "")
					if p.Next != "" {
						fmt.Fprintf(w, "\nMore instances: %s\n", listCommand(q, p.Next))
					}
				}, nil)
			})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include deleted instances")
	list.Flags().StringVar(&q.Service, "service", "", "only instances of this service")
	list.Flags().Int64Var(&q.Release, "release", 0, "only instances of this release")
	list.Flags().StringVar(&stateArg, "state", "", "only instances in this state: up, draining, error, missing or deleted")
	list.Flags().IntVar(&q.Limit, "limit", 0, fmt.Sprintf("at most this many instances per page (1 to %d; 0: all)", services.MaxPageSize))
	list.Flags().StringVar(&q.After, "after", "", "the cursor a page printed: list the instances after it")

	var force bool
	del := &cobra.Command{
		Use:   "delete ID",
		Short: "Mark an instance deleted: it will not return, so it stops holding the floor and caps",
		Long: `Mark an instance deleted: it will not return, so it stops holding the floor
and caps. A process still running as that instance is fenced: at its next
heartbeat (at once when --nats announces the delete) it withdraws its RPC
endpoints, stops its tracker and says why in its log. An instance that is up
or draining is refused unless --force.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return a.withRegistry(cmd.Context(), func(reg *services.Registry) error {
				in, err := reg.Get(cmd.Context(), id)
				if err != nil {
					return err
				}
				live := in.State == services.StateUp || in.State == services.StateDraining
				if live && !force {
					return &usageError{fmt.Errorf("instance %s is %s (host %s, pid %d, incarnation %d, last heartbeat %s): deleting it fences the running process, which stops serving within one heartbeat interval; "+
						"to delete it anyway: tandem services delete %s --force", id, in.State, in.Host, in.PID, in.Incarnation, ago(in.HeartbeatAt), id)}
				}
				before, err := reg.Floor(cmd.Context())
				if err != nil {
					return err
				}
				if err := reg.Delete(cmd.Context(), id); err != nil {
					return err
				}
				after, err := reg.Floor(cmd.Context())
				if err != nil {
					return err
				}
				v := deleteDoc{Deleted: id, Was: string(in.State), Fenced: live, FloorBefore: floorRelease(before), FloorAfter: floorRelease(after)}
				return a.emit(v, func(w io.Writer) {
					fmt.Fprintf(w, "Deleted instance %s.\n", id)
					if live {
						how := "at its next heartbeat"
						if a.natsURL != "" {
							how = "now (the delete was announced on NATS), at the latest at its next heartbeat"
						}
						fmt.Fprintf(w, "It was %s: its process (host %s, pid %d, incarnation %d) is fenced %s: it withdraws its endpoints and stops acting.\n", in.State, in.Host, in.PID, in.Incarnation, how)
					}
					switch {
					case after.Release == before.Release:
					case after.Release == 0:
						fmt.Fprintf(w, "There is no floor now: no instance is registered (it was release %d).\n", before.Release)
					default:
						fmt.Fprintf(w, "The floor rose from release %d to %d.\n", before.Release, after.Release)
					}
				}, nil)
			})
		},
	}
	del.Flags().BoolVar(&force, "force", false, "delete an instance that is up or draining; its process is fenced and stops serving within one heartbeat")

	floor := &cobra.Command{
		Use:   "floor",
		Short: "Show the release floor and the caps, and exactly which instances hold them",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withRegistry(cmd.Context(), func(reg *services.Registry) error {
				snap, err := reg.Snapshot(cmd.Context())
				if err != nil {
					return err
				}
				view := floorDoc{Floor: floorOf(snap.Floor()), Caps: capsView(snap.Caps())}
				if snap.Finalized > 0 {
					f := snap.Finalized
					view.Finalized = &f
				}
				return a.emit(view, func(w io.Writer) { printFloor(w, view.Floor, view.Caps, view.Finalized) }, nil)
			})
		},
	}
	cmd.AddCommand(list, del, floor, a.clusterCommand())
	return cmd
}

// instancesDoc is `tandem services list --json`.
type instancesDoc struct {
	Instances []instanceJSON `json:"instances"`
	// Next is the cursor of the next page (--after); null on the last.
	Next *string `json:"next"`
}

// listCommand is the command that lists q's instances after cursor.
func listCommand(q services.ListQuery, after string) string {
	c := "tandem services list"
	if q.All {
		c += " --all"
	}
	if q.Service != "" {
		c += " --service " + q.Service
	}
	if q.Release != 0 {
		c += fmt.Sprintf(" --release %d", q.Release)
	}
	if q.State != "" {
		c += " --state " + string(q.State)
	}
	if q.Limit != 0 {
		c += fmt.Sprintf(" --limit %d", q.Limit)
	}
	if after != "" {
		c += " --after " + after
	}
	return c
}

// deleteDoc is `tandem services delete --json`.
type deleteDoc struct {
	Deleted string `json:"deleted"`
	Was     string `json:"was"`
	Fenced  bool   `json:"fenced"`
	// FloorBefore and FloorAfter are null when there is no floor (no
	// instance registered).
	FloorBefore *int64 `json:"floor_before"`
	FloorAfter  *int64 `json:"floor_after"`
}

// floorDoc is `tandem services floor --json`.
type floorDoc struct {
	Floor     *floorJSON `json:"floor"`     // null: no instance registered
	Caps      []capJSON  `json:"caps"`      // one per API
	Finalized *int64     `json:"finalized"` // null: no move finalized
}

func floorRelease(f services.Floor) *int64 {
	if f.Release == 0 {
		return nil
	}
	r := f.Release
	return &r
}

func printFloor(w io.Writer, floor *floorJSON, caps []capJSON, finalized *int64) {
	if floor == nil {
		fmt.Fprintln(w, "Floor: none (no instances registered)")
	} else {
		fmt.Fprintf(w, "Floor: release %d, held since %s (%s) by:\n", floor.Release, floor.Since.String(), floor.Since.ago())
		printInstancesJSON(w, floor.Holders, "  ")
	}
	if finalized != nil {
		fmt.Fprintf(w, "Finalized: release %d (older releases may not register)\n", *finalized)
	}
	for _, c := range caps {
		fmt.Fprintf(w, "Cap %s: %s, held since %s (%s) by:\n", c.API, c.Version, c.Since.String(), c.Since.ago())
		printInstancesJSON(w, c.Holders, "  ")
	}
}
