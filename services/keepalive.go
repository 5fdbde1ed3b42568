package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

type keepAliveConfig struct {
	onFenced func(error)
	watch    *nats.Conn
}

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
// the WithOnFenced callback and returns the *FencedError (errors.Is ErrFenced).
// Fenced means stop serving and writing, within this interval; the caller
// must not register again under the id it lost. Transient failures are
// retried on the next tick; ErrNotFound (the id was never registered, or
// deleted) also ends it.
func KeepAlive(ctx context.Context, rep Reporter, id string, interval time.Duration, hb func() Heartbeat, opts ...Option) error {
	if interval <= 0 {
		return fmt.Errorf("services: keepalive: %w", &ValidationError{Field: "interval", Value: interval.String(), Reason: "must be positive"})
	}
	var cfg keepAliveConfig
	if err := applyOptions("KeepAlive", &cfg, opts, func(o Option) func(*keepAliveConfig) { return o.keepAlive }); err != nil {
		return err
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
