package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/services"
)

// clusterView is `tandem services cluster --json`.
type clusterView struct {
	Cluster string `json:"cluster"`
}

// clusterCommand prints the cluster identity `tandem schema ensure`
// recorded: the token that keeps this cluster's NATS subjects apart from
// other clusters', which nodes without database credentials are given.
func (a *app) clusterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "cluster",
		Short: "Print this cluster's identity (its token in every NATS subject)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withRegistry(cmd.Context(), func(reg *services.Registry) error {
				id := reg.Cluster()
				return a.emit(clusterView{Cluster: id}, func(w io.Writer) {
					fmt.Fprintf(w, "Cluster: %s\n", id)
					fmt.Fprintf(w, "Subjects: tandem.%s.<api>.<Method>.v<major>.<minor> (RPC), %s (registry notices), %s.* (registry over NATS)\n",
						id, services.ChangedSubject(id), services.RemoteSubject(id))
					fmt.Fprintf(w, "Nodes without database credentials: services.NewRemote(nc, %q)\n", id)
				}, nil)
			})
		},
	}
}
