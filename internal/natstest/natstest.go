// Package natstest runs an embedded nats-server with JetStream on a random
// loopback port and its own store directory, for tests and for the demo,
// and clusters of them joined by routes (cluster.go).
package natstest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded NATS server.
type Server struct {
	*server.Server
	storeDir string
	ownDir   bool
	port     int // kept, so a stopped server can be restarted on it
}

// Start runs a server on 127.0.0.1 with a random port (or port, when not 0)
// and JetStream in storeDir (a new temporary directory when empty).
func Start(port int, storeDir string) (*Server, error) {
	own := false
	if storeDir == "" {
		d, err := os.MkdirTemp("", "tandem-nats-*")
		if err != nil {
			return nil, err
		}
		storeDir, own = d, true
	}
	if port == 0 {
		port = -1
	}
	opts := &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: storeDir, NoLog: true, NoSigs: true}
	s, err := run(opts)
	if err != nil {
		return nil, err
	}
	ns := &Server{Server: s, storeDir: storeDir, ownDir: own}
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		ns.port = a.Port
	}
	return ns, nil
}

func run(opts *server.Options) (*server.Server, error) {
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natstest: embedded nats-server not ready after 10s")
	}
	return s, nil
}

// Stop shuts the server down and removes a store directory it created.
func (s *Server) Stop() {
	s.Shutdown()
	s.WaitForShutdown()
	if s.ownDir {
		_ = os.RemoveAll(s.storeDir)
	}
}

// Restart shuts s down (if it still runs), waits down, and starts a server
// on the same port and store directory in its place, as an operator
// restarting NATS would; clients come back through their own reconnect
// logic. Call it from one goroutine at a time.
func (s *Server) Restart(down time.Duration) error {
	port := s.port
	s.Shutdown()
	s.WaitForShutdown()
	time.Sleep(down)
	n, err := Start(port, s.storeDir)
	if err != nil {
		return err
	}
	s.Server, s.port = n.Server, n.port
	return nil
}

// Port returns the port the server listens (or, stopped, listened) on.
func (s *Server) Port() int { return s.port }

// New starts a server for one test and stops it when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start(0, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Connect opens a client connection to s, closed when the test ends.
func Connect(t testing.TB, s *Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
