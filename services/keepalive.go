package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// KeepAliveOption configures KeepAlive.
type KeepAliveOption func(*keepAliveConfig)

type keepAliveConfig struct {
	onFenced func(error)
	watch    *nats.Conn
}

// OnFenced calls fn once, with the *FencedError (errors.Is ErrFenced), when
// the instance turns out deleted or superseded, before KeepAlive returns.
// Stop what acts for the instance there: withdraw its endpoints, stop its
// dualwrite.Tracker (Tracker.Stop has the right signature).
func OnFenced(fn func(error)) KeepAliveOption { return func(c *keepAliveConfig) { c.onFenced = fn } }

// WatchChanges makes KeepAlive also listen to the registry's change notices
// on nc (ChangedSubject of the reporter's cluster) and heartbeat at once when one names this
// instance, so a delete or a successor announced on NATS fences it within
// a round trip instead of at the next tick.
func WatchChanges(nc *nats.Conn) KeepAliveOption { return func(c *keepAliveConfig) { c.watch = nc } }

// incarnations is implemented by Registry and Remote: the incarnation they
// registered for an id.
type incarnations interface {
	Incarnation(id string) (int64, bool)
}

// KeepAlive heartbeats id through rep every interval until ctx is done, then
// returns nil. hb, if not nil, supplies what to report each time (state,
// APIs, the phase acted on per move). Each heartbeat names the incarnation
// rep registered for id, so a process whose id was deleted or taken over by
// a newer incarnation learns it at the next heartbeat: KeepAlive then calls
// the OnFenced callback and returns the *FencedError (errors.Is ErrFenced).
// Fenced means stop serving and writing, within this interval; the caller
// must not register again under the id it lost. Transient failures are
// retried on the next tick; ErrNotFound (the id was never registered, or
// deleted) also ends it.
func KeepAlive(ctx context.Context, rep Reporter, id string, interval time.Duration, hb func() Heartbeat, opts ...KeepAliveOption) error {
	if interval <= 0 {
		return fmt.Errorf("services: keepalive: %w", &ValidationError{Field: "interval", Value: interval.String(), Reason: "must be positive"})
	}
	var cfg keepAliveConfig
	for _, o := range opts {
		o(&cfg)
	}
	var inc int64
	if h, ok := rep.(incarnations); ok {
		inc, _ = h.Incarnation(id)
	}
	nudge := make(chan struct{}, 1)
	cl, scoped := rep.(interface{ Cluster() string })
	if cfg.watch != nil && scoped {
		sub, err := cfg.watch.Subscribe(ChangedSubject(cl.Cluster()), func(m *nats.Msg) {
			var c Change
			if json.Unmarshal(m.Data, &c) == nil && c.Instance == id && (c.Event == "delete" || c.Event == "register") {
				select {
				case nudge <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			return fmt.Errorf("services: keepalive %s: watch changes: %w", id, err)
		}
		defer sub.Unsubscribe() //nolint:errcheck
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-nudge:
		}
		var h Heartbeat
		if hb != nil {
			h = hb()
		}
		if h.Incarnation == 0 {
			h.Incarnation = inc
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := rep.Heartbeat(cctx, id, h)
		cancel()
		if errors.Is(err, ErrFenced) || errors.Is(err, ErrNotFound) {
			if ctx.Err() != nil {
				return nil
			}
			if cfg.onFenced != nil {
				cfg.onFenced(err)
			}
			return err
		}
	}
}
