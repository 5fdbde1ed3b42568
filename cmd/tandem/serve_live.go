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
// live part changed (event "status"), or when a reading failed (event
// "stale": the page keeps what it shows and says it may be old). A registry notice (kick) rereads at once, at most
// once per serveMinGap; while someone watches it also rereads every
// serveTick, for what no notice announces (backfill progress, phases).
type hub struct {
	render  func(context.Context) ([]byte, error)
	log     *slog.Logger
	kicks   chan struct{}
	onClose func()

	mu       sync.Mutex
	watchers map[chan pageEvent]struct{}
	last     []byte
	failing  bool
}

// pageEvent is one server-sent event of /events.
type pageEvent struct {
	name string // "status" or "stale"
	data []byte
}

func newHub(render func(context.Context) ([]byte, error), log *slog.Logger) *hub {
	return &hub{render: render, log: log, kicks: make(chan struct{}, 1), watchers: map[chan pageEvent]struct{}{}}
}

func (h *hub) kick() {
	select {
	case h.kicks <- struct{}{}:
	default:
	}
}

// subscribe returns a channel of events, starting with the latest page
// fragment, and a func to stop.
func (h *hub) subscribe() (<-chan pageEvent, func()) {
	ch := make(chan pageEvent, 1)
	h.mu.Lock()
	h.watchers[ch] = struct{}{}
	last := h.last
	h.mu.Unlock()
	if last != nil {
		ch <- pageEvent{name: "status", data: last}
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
		if ctx.Err() != nil {
			return
		}
		h.log.Warn("serve: live page: read failed", "err", err)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.failing {
			h.failing = true
			// Never the error itself: a driver's error may quote its DSN.
			h.send(pageEvent{name: "stale", data: []byte("the registry or the ledger could not be read; what is shown may be old")})
		}
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if bytes.Equal(frag, h.last) && !h.failing {
		return
	}
	h.failing = false
	h.last = frag
	h.send(pageEvent{name: "status", data: frag})
}

// send gives ev to every watcher; one that has not taken the previous
// event gets this one instead. h.mu is held.
func (h *hub) send(ev pageEvent) {
	for ch := range h.watchers {
		select {
		case <-ch:
		default:
		}
		ch <- ev
	}
}
