package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Cluster is nodes of core NATS (no JetStream) on loopback, joined by
// routes into one cluster: a client of any node reaches the subscribers
// of every node.
type Cluster struct {
	Nodes []*server.Server
	opts  []*server.Options
}

// StartCluster runs n clustered nodes. Each listens for clients and routes
// on ports of its own, kept across Restart; every node is given the route
// ports of the others, so any of them can go down and come back.
func StartCluster(n int) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("natstest: a cluster of %d nodes", n)
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{}
	for i := range n {
		var routes []*url.URL
		for j := range n {
			if j != i {
				routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*j+1])})
			}
		}
		c.opts = append(c.opts, &server.Options{
			ServerName: fmt.Sprintf("node-%d", i), Host: "127.0.0.1", Port: ports[2*i], NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "tandem-test", Host: "127.0.0.1", Port: ports[2*i+1]},
			Routes:  routes,
		})
	}
	for _, o := range c.opts {
		s, err := run(o.Clone())
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	if err := c.WaitRouted(10 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// freePorts asks the kernel for n free loopback ports. Another process may
// take one before the nodes listen on it; the start then fails loudly.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natstest: a free port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// NewCluster starts a cluster for one test and stops it when the test ends.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := StartCluster(n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return c
}

// URL is node i's client URL.
func (c *Cluster) URL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port) }

// URLs is every node's client URL, comma separated: the seed list a client
// is given (nats.Connect accepts it as is).
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.opts))
	for i := range c.opts {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// Kill shuts node i down at once; its clients fail over to other nodes.
func (c *Cluster) Kill(i int) {
	c.Nodes[i].Shutdown()
	c.Nodes[i].WaitForShutdown()
}

// Start brings node i back on its ports, after Kill, and waits until it is
// routed to every other running node.
func (c *Cluster) Start(i int) error {
	s, err := run(c.opts[i].Clone())
	if err != nil {
		return err
	}
	c.Nodes[i] = s
	return c.WaitRouted(30 * time.Second)
}

// WaitRouted waits until every running node has a route to every other
// running node.
func (c *Cluster) WaitRouted(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		running := 0
		for _, s := range c.Nodes {
			if s.Running() {
				running++
			}
		}
		ok := true
		for _, s := range c.Nodes {
			if s.Running() && peers(s) < running-1 {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("natstest: cluster nodes not routed to each other in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// peers counts the distinct nodes s has a route to (a route may be a pool
// of several connections).
func peers(s *server.Server) int {
	rz, err := s.Routez(nil)
	if err != nil {
		return 0
	}
	ids := map[string]bool{}
	for _, r := range rz.Routes {
		ids[r.RemoteID] = true
	}
	return len(ids)
}

// Stop shuts every node down.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// Connect opens a client connection to the cluster with node i first in
// its seed list (the others follow, so it fails over to them), closed when
// the test ends. It reconnects forever, quickly, and does not shuffle the
// seeds, so a test knows which node each client starts on.
func (c *Cluster) Connect(t testing.TB, i int) *nats.Conn {
	t.Helper()
	urls := []string{c.URL(i)}
	for j := range c.opts {
		if j != i {
			urls = append(urls, c.URL(j))
		}
	}
	nc, err := nats.Connect(strings.Join(urls, ","), nats.DontRandomize(), nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
