package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
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
	opts := []services.Option{services.WithLogger(a.logger())}
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

	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List instances (missing is derived from heartbeat age)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withRegistry(cmd.Context(), func(reg *services.Registry) error {
				ins, err := reg.List(cmd.Context(), all)
				if err != nil {
					return err
				}
				if ins == nil {
					ins = []services.Instance{}
				}
				return a.emit(ins, func(w io.Writer) {
					if len(ins) == 0 {
						fmt.Fprintln(w, "No instances registered.")
						return
					}
					printInstances(w, ins, "")
				}, nil)
			})
		},
	}
	list.Flags().BoolVar(&all, "all", false, "include deleted instances")

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
				v := map[string]any{"deleted": id, "was": in.State, "fenced": live, "floor_before": before.Release, "floor_after": after.Release}
				return a.emit(v, func(w io.Writer) {
					fmt.Fprintf(w, "Deleted instance %s.\n", id)
					if live {
						how := "at its next heartbeat"
						if a.natsURL != "" {
							how = "now (the delete was announced on NATS), at the latest at its next heartbeat"
						}
						fmt.Fprintf(w, "It was %s: its process (host %s, pid %d, incarnation %d) is fenced %s: it withdraws its endpoints and stops acting.\n", in.State, in.Host, in.PID, in.Incarnation, how)
					}
					if after.Release != before.Release {
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
				view := floorView{Floor: snap.Floor(), Caps: sortedCaps(snap.Caps()), Finalized: snap.Finalized}
				return a.emit(view, view.print, nil)
			})
		},
	}
	cmd.AddCommand(list, del, floor, a.clusterCommand())
	return cmd
}

type floorView struct {
	Floor     services.Floor `json:"floor"`
	Caps      []services.Cap `json:"caps"`
	Finalized int64          `json:"finalized"`
}

func sortedCaps(m map[string]services.Cap) []services.Cap {
	out := make([]services.Cap, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].API < out[j].API })
	return out
}

func (v floorView) print(w io.Writer) {
	if v.Floor.Release == 0 {
		fmt.Fprintln(w, "Floor: none (no instances registered)")
	} else {
		fmt.Fprintf(w, "Floor: release %d, held since %s (%s) by:\n", v.Floor.Release, v.Floor.Since.Format(time.RFC3339), ago(v.Floor.Since))
		printInstances(w, v.Floor.Holders, "  ")
	}
	if v.Finalized > 0 {
		fmt.Fprintf(w, "Finalized: release %d (older releases may not register)\n", v.Finalized)
	}
	for _, c := range v.Caps {
		fmt.Fprintf(w, "Cap %s: %s, held since %s (%s) by:\n", c.API, c.Version, c.Since.Format(time.RFC3339), ago(c.Since))
		printInstances(w, c.Holders, "  ")
	}
}
