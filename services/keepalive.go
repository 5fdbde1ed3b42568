package services

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// KeepAlive heartbeats id through rep every interval until ctx is done, then
// returns nil. hb, if not nil, supplies what to report each time (state,
// APIs, the phase acted on per move). Transient failures are retried on the
// next tick; it returns an error only when the registry no longer knows the
// instance (ErrNotFound: an operator deleted it) so the caller can decide
// whether to register again or stop.
func KeepAlive(ctx context.Context, rep Reporter, id string, interval time.Duration, hb func() Heartbeat) error {
	if interval <= 0 {
		return fmt.Errorf("services: keepalive: %w", &ValidationError{Field: "interval", Value: interval.String(), Reason: "must be positive"})
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var h Heartbeat
		if hb != nil {
			h = hb()
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := rep.Heartbeat(cctx, id, h)
		cancel()
		if errors.Is(err, ErrNotFound) {
			return err
		}
	}
}
