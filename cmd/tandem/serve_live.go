package main

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"
)

// hub feeds the page's event streams: one reading of the registry and the
// ledger per change, shared by every watcher, sent only when the page's
// live part changed. A registry notice (kick) rereads at once, at most
// once per serveMinGap; while someone watches it also rereads every
// serveTick, for what no notice announces (backfill progress, phases).
type hub struct {
	render  func(context.Context) ([]byte, error)
	log     *slog.Logger
	kicks   chan struct{}
	onClose func()

	mu       sync.Mutex
	watchers map[chan []byte]struct{}
	last     []byte
}

func newHub(render func(context.Context) ([]byte, error), log *slog.Logger) *hub {
	return &hub{render: render, log: log, kicks: make(chan struct{}, 1), watchers: map[chan []byte]struct{}{}}
}

func (h *hub) kick() {
	select {
	case h.kicks <- struct{}{}:
	default:
	}
}

// subscribe returns a channel of page fragments, starting with the
// latest one, and a func to stop.
func (h *hub) subscribe() (<-chan []byte, func()) {
	ch := make(chan []byte, 1)
	h.mu.Lock()
	h.watchers[ch] = struct{}{}
	last := h.last
	h.mu.Unlock()
	if last != nil {
		ch <- last
	}
	h.kick() // a new watcher gets a fresh reading soon
	return ch, func() {
		h.mu.Lock()
		delete(h.watchers, ch)
		h.mu.Unlock()
	}
}

func (h *hub) watched() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.watchers) > 0
}

func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(serveTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kicks:
		case <-t.C:
			if !h.watched() {
				continue // nobody watches: no reading
			}
		}
		h.publish(ctx)
		select { // coalesce a burst of notices
		case <-ctx.Done():
			return
		case <-time.After(serveMinGap):
		}
	}
}

func (h *hub) publish(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	frag, err := h.render(rctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("serve: live page: read failed", "err", err)
		}
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if bytes.Equal(frag, h.last) {
		return
	}
	h.last = frag
	for ch := range h.watchers {
		select {
		case <-ch: // a watcher that has not taken the last one gets the newest
		default:
		}
		ch <- frag
	}
}
