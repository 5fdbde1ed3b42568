package rpcver

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// recentReconnect is how long after its connection came back a client says
// so in a NoServerError: about the time servers need to resubscribe after a
// NATS restart.
const recentReconnect = 5 * time.Second

// link is a client's own NATS connection. nats.go keeps what is published
// while it reconnects (8 MiB by default) and sends it once it is back, when
// the caller may long have given up: a write the caller saw fail would
// then run after all. So the client never publishes through the
// application's connection: it opens its own to the same servers with the
// same options, but with the reconnect buffer off, and sends only while it
// is connected. Nothing is ever held back to be sent later, whatever the
// application configured.
type link struct {
	nc          *nats.Conn
	drops       atomic.Uint64 // disconnects so far
	reconnected atomic.Int64  // unix nanoseconds of the last reconnect, 0 before any
	stop        chan struct{}
	stopOnce    sync.Once
}

// dial opens the link to app's servers. It closes itself when app closes,
// so a client nobody closes does not outlive the application's connection.
func dial(app *nats.Conn, name string, log *slog.Logger) (*link, error) {
	if app.IsClosed() {
		return nil, nats.ErrConnectionClosed
	}
	l := &link{stop: make(chan struct{})}
	opts := app.Opts
	opts.Name = name
	opts.ReconnectBufSize = -1 // publishing while disconnected fails at once
	// The application's callbacks belong to its own connection; this one
	// reports through the client's logger (silent by default).
	opts.ClosedCB, opts.DiscoveredServersCB, opts.LameDuckModeHandler, opts.ConnectedCB = nil, nil, nil, nil
	opts.DisconnectedCB, opts.ReconnectErrCB = nil, nil
	opts.DisconnectedErrCB = func(_ *nats.Conn, err error) {
		l.drops.Add(1)
		log.Info("rpcver: client disconnected from NATS", "name", name, "err", err)
	}
	opts.ReconnectedCB = func(nc *nats.Conn) {
		l.reconnected.Store(time.Now().UnixNano())
		log.Info("rpcver: client reconnected to NATS", "name", name, "url", nc.ConnectedUrlRedacted())
	}
	opts.AsyncErrorCB = func(_ *nats.Conn, _ *nats.Subscription, err error) {
		log.Warn("rpcver: NATS error", "name", name, "err", err)
	}
	nc, err := opts.Connect()
	if err != nil {
		return nil, err
	}
	l.nc = nc
	closed := app.StatusChanged(nats.CLOSED)
	go func() {
		select {
		case <-closed:
		case <-l.stop:
			app.RemoveStatusListener(closed)
		}
		nc.Close()
	}()
	if app.IsClosed() {
		// Closed before the listener was in place: no event will come.
		l.close()
	}
	return l, nil
}

func (l *link) close() { l.stopOnce.Do(func() { close(l.stop) }) }

// epoch counts the connection's drops; a call compares it before and
// after to learn whether its connection dropped while it waited.
func (l *link) epoch() uint64 { return l.drops.Load() }

// down returns the status when the link cannot send now.
func (l *link) down() (nats.Status, bool) {
	st := l.nc.Status()
	return st, st != nats.CONNECTED
}

// sinceReconnect is how long ago the connection came back, when that was
// within recentReconnect; else zero.
func (l *link) sinceReconnect() time.Duration {
	at := l.reconnected.Load()
	if at == 0 {
		return 0
	}
	if d := time.Since(time.Unix(0, at)); d < recentReconnect {
		return max(d, time.Millisecond)
	}
	return 0
}

// notSent reports whether a nats.go error means the request never left:
// the connection refused to buffer it, or was closed or draining.
func notSent(err error) bool {
	return errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionClosed) ||
		errors.Is(err, nats.ErrConnectionDraining) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		errors.Is(err, nats.ErrDisconnected)
}
