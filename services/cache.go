package services

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTTL is how long a Cache trusts its snapshot without a notification.
const DefaultTTL = 10 * time.Second

// Cache keeps a registry snapshot in memory for hot paths: Cap, Floor and
// Snapshot never touch the network or the database. It refreshes when the
// registry announces a change on its cluster's ChangedSubject, whenever its connection
// comes back after a disconnect (a notice sent meanwhile never reached
// it), and, in case a notice is lost some other way, whenever the
// snapshot is older than its TTL. A refresh that fails is retried soon,
// not only at the next TTL.
type Cache struct {
	src   Source
	ttl   time.Duration
	log   *slog.Logger
	state atomic.Pointer[cacheState]

	kick   chan struct{}
	nc     *nats.Conn
	sub    *nats.Subscription
	status chan nats.Status // the connection's reconnects (CONNECTED) and its end (CLOSED)
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // serializes refreshes
	changed chan struct{}

	metricsReg prometheus.Registerer // WithMetrics
	met        *cacheMetrics         // nil without metrics
}

type cacheState struct {
	snap  Snapshot
	caps  map[string]Version
	floor int64
}

// CacheOption configures a Cache.
type CacheOption func(*Cache)

// WithTTL sets how long a snapshot is trusted without a notification.
func WithTTL(d time.Duration) CacheOption { return func(c *Cache) { c.ttl = d } }

// WithCacheLogger sets a logger; the cache is silent by default.
func WithCacheLogger(l *slog.Logger) CacheOption { return func(c *Cache) { c.log = l } }

// NewCache reads src once and keeps the result fresh until Close. nc may be
// nil, in which case only the TTL refreshes it.
func NewCache(ctx context.Context, src Source, nc *nats.Conn, opts ...CacheOption) (*Cache, error) {
	c := &Cache{src: src, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler), kick: make(chan struct{}, 1),
		done: make(chan struct{}), changed: make(chan struct{})}
	for _, o := range opts {
		o(c)
	}
	if c.ttl <= 0 {
		return nil, fmt.Errorf("services: cache: %w", &ValidationError{Field: "TTL", Value: c.ttl.String(), Reason: "must be positive"})
	}
	if err := c.Refresh(ctx); err != nil {
		return nil, err
	}
	if c.metricsReg != nil {
		// Labelled with the cluster, which the first read told.
		met, err := newCacheMetrics(c, c.metricsReg)
		if err != nil {
			return nil, err
		}
		met.refreshed(nil)
		c.met = met
	}
	if nc != nil {
		// Listen for reconnects before subscribing, so none falls between.
		// A status listener adds to the application's handlers, never
		// replaces them.
		c.nc, c.status = nc, nc.StatusChanged(nats.CONNECTED, nats.CLOSED)
		// The notices of the source's cluster only, as its snapshot says.
		subj := ChangedSubject(c.Cluster())
		if err := CheckCluster(c.Cluster()); err != nil {
			nc.RemoveStatusListener(c.status)
			return nil, fmt.Errorf("services: cache: the source's snapshot names no cluster: %w", err)
		}
		sub, err := nc.Subscribe(subj, func(*nats.Msg) {
			c.noticed()
			c.Kick()
		})
		if err != nil {
			nc.RemoveStatusListener(c.status)
			return nil, fmt.Errorf("services: cache: subscribe %s: %w", subj, err)
		}
		c.sub = sub
		// Make the subscription live on the server before returning, so a
		// change announced right after NewCache is not missed; if NATS is
		// unreachable now the TTL still refreshes the cache.
		_ = nc.FlushTimeout(5 * time.Second)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go c.loop(loopCtx)
	return c, nil
}

// noticed counts a change notice. c.met is set before the subscription
// and the refresh loop start, and never changes after.
func (c *Cache) noticed() { c.met.noticed() }

// Kick asks for a refresh soon; notifications call it, and so may a client
// that was told by a server that its view is stale.
func (c *Cache) Kick() {
	select {
	case c.kick <- struct{}{}:
	default: // one pending refresh covers any number of notices
	}
}

// Retries of a failed refresh start after retryFirst and double up to
// retryMax (and never wait longer than the TTL): right after a NATS
// restart a remote registry may not have resubscribed yet.
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = time.Second
)

func (c *Cache) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTimer(c.ttl)
	defer t.Stop()
	retry := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-t.C:
		case st, ok := <-c.status:
			if !ok || st == nats.CLOSED {
				c.status = nil // the connection is gone; the TTL still refreshes
				continue
			}
			// Back after a disconnect: nats.go has resent the subscription;
			// one round trip proves the NATS server holds it, so a change
			// made after the refresh below is announced to this cache and
			// one made before it (or during the outage) is in the snapshot.
			if err := c.nc.FlushTimeout(c.ttl); err != nil {
				c.log.Info("registry notices: flush after reconnect failed", "err", err)
			}
			c.log.Info("reconnected to NATS; refreshing the registry snapshot")
		}
		rctx, cancel := context.WithTimeout(ctx, c.ttl)
		err := c.Refresh(rctx)
		cancel()
		wait := c.ttl
		if err != nil && ctx.Err() == nil {
			// Keep serving the last snapshot: a stale cap is safe (it is
			// never above the truth for long), an outage is not.
			retry = min(max(2*retry, retryFirst), retryMax, c.ttl)
			wait = retry
			c.log.Warn("registry refresh failed; serving the last snapshot", "err", err, "retry_in", wait)
		} else {
			retry = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// Refresh reads the source now.
func (c *Cache) Refresh(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap, err := c.src.Snapshot(ctx)
	c.met.refreshed(err)
	if err != nil {
		return fmt.Errorf("services: cache refresh: %w", err)
	}
	st := &cacheState{snap: snap, caps: map[string]Version{}, floor: snap.Floor().Release}
	for name, cp := range snap.Caps() {
		st.caps[name] = cp.Version
	}
	old := c.state.Swap(st)
	if old == nil || !sameView(old, st) {
		close(c.changed)
		c.changed = make(chan struct{})
	}
	return nil
}

func sameView(a, b *cacheState) bool {
	if a.floor != b.floor || len(a.caps) != len(b.caps) || a.snap.Finalized != b.snap.Finalized {
		return false
	}
	for k, v := range a.caps {
		if b.caps[k] != v {
			return false
		}
	}
	return true
}

// Changed returns a channel closed the next time the floor, a cap or the
// finalized release changes in this cache.
func (c *Cache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Cap returns the cap of an API, or false when no live server serves it.
func (c *Cache) Cap(api string) (Version, bool) {
	v, ok := c.state.Load().caps[api]
	return v, ok
}

// Cluster is the identity of the cluster the cache follows, from its
// source's snapshot; rpcver clients capped by the cache use it.
func (c *Cache) Cluster() string { return c.state.Load().snap.Cluster }

// Floor returns the release floor (0 when no instance is registered).
func (c *Cache) Floor() int64 { return c.state.Load().floor }

// Snapshot returns the cached snapshot. Treat it as read-only.
func (c *Cache) Snapshot() Snapshot { return c.state.Load().snap }

// Close stops refreshing and unsubscribes; reads keep returning the last view.
func (c *Cache) Close() {
	if c.sub != nil {
		_ = c.sub.Unsubscribe()
	}
	c.cancel()
	<-c.done
	if c.status != nil {
		c.nc.RemoveStatusListener(c.status)
	}
}
