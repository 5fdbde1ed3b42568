package services

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultTTL is how long a Cache goes without checking its source when no
// notice arrives.
const DefaultTTL = 10 * time.Second

// gapWait is how long a cache waits for a notice that is missing from the
// sequence before it reads the changes from its source: notices from
// different registries may arrive out of order by a few milliseconds.
const gapWait = 200 * time.Millisecond

// readTimeout bounds one read of the source by the cache's loop.
const readTimeout = 10 * time.Second

// Cache keeps a registry snapshot in memory for hot paths: Cap, Floor and
// Snapshot never touch the network or the database.
//
// It follows the registry the way a Kubernetes watcher follows the API
// server: it reads one full snapshot, which says the revision it holds
// (Snapshot.Revision), then applies every change notice (Change) whose
// revision follows its own as a delta, reading nothing. Floor and caps are
// kept by counting releases and versions, so a change costs no scan of the
// instances. When a notice is missing from the sequence (lost, or from a
// registry without NATS), the cache asks its source for the changes after
// its revision (ChangeSource.Changes), which reads only the changed rows.
// It reads a full snapshot again only when its NATS connection comes back
// after a disconnect, when Kick or Refresh asks for one, when a notice
// carries no revision (a registry of an older release), and when its
// source cannot list changes. Every TTL (less up to a fifth of it, at
// random, so that caches started together do not all read at once) it
// checks its source for changes it missed, and for instances whose
// heartbeat lapsed: going missing records no change, so no notice tells
// it.
//
// A refresh that fails is retried soon, not only at the next TTL; the
// last view is served meanwhile.
type Cache struct {
	src   Source
	ttl   time.Duration
	log   *slog.Logger
	hook  func(CacheEvent)
	view  atomic.Pointer[cacheView]
	kick  chan struct{} // a full snapshot soon
	nudge chan struct{} // a gap or a TTL: catch up soon

	nc     *nats.Conn
	sub    *nats.Subscription
	status chan nats.Status // the connection's reconnects (CONNECTED) and its end (CLOSED)
	cancel context.CancelFunc
	done   chan struct{}

	// reads serializes reads of the source; mu guards the state below and
	// is never held during one: a notice arriving meanwhile is kept in
	// pending and applied after the read.
	reads      sync.Mutex
	mu         sync.Mutex
	changed    chan struct{}
	st         cacheState
	stats      CacheStats
	metricsReg prometheus.Registerer // WithMetrics
	met        *cacheMetrics         // nil without metrics
}

// cacheView is what the hot path reads, swapped whole.
type cacheView struct {
	cluster   string
	caps      map[string]Version
	floor     int64
	finalized int64
}

// cacheState is the cache's copy of the registry and the counts that keep
// floor and caps without a scan.
type cacheState struct {
	rev       int64
	cluster   string
	finalized int64
	takenAt   time.Time
	// byID points at instances nobody changes after: a snapshot's, a
	// notice's or a delta's (a change replaces the pointer).
	byID map[string]*Instance
	// gone remembers the revision at which an instance left, so an older
	// notice about it (reordered, or replayed after a catch-up) does not
	// bring it back, and its last record, whose unchanged parts the
	// notice of its next incarnation reuses (see decodeChange).
	gone     map[string]goneRecord
	releases map[int64]int
	versions map[string]map[Version]int
	floor    int64
	caps     map[string]Version
	pending  map[int64]Change // notices above rev+1, waiting for the gap to fill
	gapSince time.Time
	// reading is set while a full snapshot is read: notices wait in
	// pending until it is applied. During a catch-up they apply as they
	// come, and the catch-up keeps whatever is newer by revision.
	reading bool
	snap    *Snapshot // built on demand, dropped at each change
}

type goneRecord struct {
	rev  int64
	last *Instance
}

// CacheStats counts what a Cache did since it was created.
type CacheStats struct {
	// Revision is the registry revision the cache holds.
	Revision int64 `json:"revision"`
	// Deltas counts notices applied without reading the source.
	Deltas uint64 `json:"deltas"`
	// Snapshots counts full reads of the source; CatchUps counts reads of
	// the changes after a revision (after a gap, or on the TTL).
	Snapshots uint64 `json:"snapshots"`
	CatchUps  uint64 `json:"catch_ups"`
	// Gaps counts notices that did not follow the cache's revision.
	Gaps uint64 `json:"gaps"`
	// RowsRead counts the instance rows the cache's reads returned:
	// every row of a snapshot, and the changed and lapsed rows of a
	// catch-up.
	RowsRead uint64 `json:"rows_read"`
}

// CacheEvent reports one thing a Cache applied; see WithCacheEvents.
type CacheEvent struct {
	// Kind is "delta" (a notice applied as it came), "snapshot" or
	// "catch-up".
	Kind string
	// Revision is the cache's revision afterwards.
	Revision int64
	// Rows is how many instance rows were read for it (0 for a delta).
	Rows int
	// Lag is, for a notice, how long after its change committed the
	// cache applied it (Change.At to now); 0 otherwise.
	Lag time.Duration
}

// NewCache reads src once and keeps the result fresh until Close. nc may be
// nil, in which case only the TTL refreshes it.
func NewCache(ctx context.Context, src Source, nc *nats.Conn, opts ...Option) (*Cache, error) {
	c := &Cache{src: src, ttl: DefaultTTL, log: slog.New(slog.DiscardHandler), kick: make(chan struct{}, 1),
		nudge: make(chan struct{}, 1), done: make(chan struct{}), changed: make(chan struct{})}
	if err := applyOptions("NewCache", c, opts, func(o Option) func(*Cache) { return o.cache }); err != nil {
		return nil, err
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
		sub, err := nc.Subscribe(subj, c.notice)
		if err != nil {
			nc.RemoveStatusListener(c.status)
			return nil, fmt.Errorf("services: cache: subscribe %s: %w", subj, err)
		}
		// At fleet scale a rollout sends thousands of notices; a cache
		// that falls behind catches up by revision, so let them queue.
		_ = sub.SetPendingLimits(-1, 256<<20)
		c.sub = sub
		// Make the subscription live on the server before returning, so a
		// change announced right after NewCache is not missed; if NATS is
		// unreachable now the TTL still refreshes the cache. A change made
		// between the first read and now shows as a gap and is caught up.
		_ = nc.FlushTimeout(5 * time.Second)
	}
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	go c.loop(loopCtx)
	return c, nil
}

// Kick asks for a full snapshot soon; a notice without a revision calls
// it, and so may a client that was told by a server that its view is
// stale.
func (c *Cache) Kick() {
	select {
	case c.kick <- struct{}{}:
	default: // one pending refresh covers any number of requests
	}
}

func (c *Cache) catchUpSoon() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// notice handles one message on ChangedSubject.
func (c *Cache) notice(m *nats.Msg) {
	c.met.noticed()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	// Decoded under the lock: the instance the cache holds lends the
	// notice its unchanged parts.
	ch, err := decodeChange(m.Data, s)
	if err == nil && ch.Event == EventWriteFreeze {
		return // the ledger's, not the registry's: nothing to apply
	}
	if err != nil || ch.Revision == 0 || (ch.Record == nil && ch.Event != "finalize") {
		// A registry of an older release: its notice says only that
		// something changed, and its writes record no revision.
		c.Kick()
		return
	}
	switch {
	case ch.Revision <= s.rev:
		return // already in what the cache read
	case s.reading:
		// Applied once the snapshot being read is: it may hold this
		// change or not, and the revision rule sorts that out.
		if s.pending == nil {
			s.pending = map[int64]Change{}
		}
		s.pending[ch.Revision] = ch
		return
	case ch.Revision > s.rev+1:
		if s.pending == nil {
			s.pending = map[int64]Change{}
		}
		s.pending[ch.Revision] = ch
		if s.gapSince.IsZero() {
			s.gapSince = time.Now()
			c.stats.Gaps++
			c.catchUpSoon() // the loop waits gapWait before reading
		}
		return
	}
	before := c.view.Load()
	c.applyNotice(ch)
	c.drain()
	c.publish(before)
}

// applyNotice applies one notice that follows the cache's revision.
func (c *Cache) applyNotice(ch Change) {
	s := &c.st
	if ch.Record != nil {
		c.put(ch.Record)
	}
	if ch.Event == "finalize" && ch.Finalized > s.finalized {
		s.finalized = ch.Finalized
	}
	s.rev = ch.Revision
	if ch.At.After(s.takenAt) {
		s.takenAt = ch.At // the view is current as of this change
	}
	c.stats.Deltas++
	if c.hook != nil {
		c.hook(CacheEvent{Kind: "delta", Revision: s.rev, Lag: time.Since(ch.At)})
	}
}

// drain applies the pending notices that now follow the revision.
func (c *Cache) drain() {
	s := &c.st
	for len(s.pending) > 0 {
		next, ok := s.pending[s.rev+1]
		if !ok {
			for r := range s.pending {
				if r <= s.rev {
					delete(s.pending, r)
				}
			}
			if len(s.pending) == 0 {
				break
			}
			return // still a gap: the loop catches up
		}
		delete(s.pending, s.rev+1)
		c.applyNotice(next)
	}
	s.gapSince = time.Time{}
}

// settle applies what the pending notices can after a read of the
// source, and restarts the wait for what is still missing.
func (c *Cache) settle() {
	s := &c.st
	s.gapSince = time.Time{}
	c.drain()
	if len(s.pending) > 0 {
		s.gapSince = time.Now()
		c.catchUpSoon()
	}
}

// put applies one instance as of its revision, unless the cache already
// holds a later state of it.
func (c *Cache) put(in *Instance) {
	s := &c.st
	old, held := s.byID[in.ID]
	if held && old.Revision >= in.Revision && in.Revision != 0 {
		return
	}
	if gone, ok := s.gone[in.ID]; ok && gone.rev >= in.Revision && in.Revision != 0 {
		return
	}
	if held {
		c.uncount(*old)
	}
	s.snap = nil
	if in.State == StateDeleted {
		delete(s.byID, in.ID)
		s.gone[in.ID] = goneRecord{rev: in.Revision, last: in}
		return
	}
	delete(s.gone, in.ID)
	s.byID[in.ID] = in
	c.count(*in)
}

func (c *Cache) count(in Instance) {
	s := &c.st
	s.releases[in.Release]++
	if s.floor == 0 || in.Release < s.floor {
		s.floor = in.Release
	}
	for _, a := range in.APIs {
		vs := s.versions[a.Name]
		if vs == nil {
			vs = map[Version]int{}
			s.versions[a.Name] = vs
		}
		vs[a.Current]++
		if cp, ok := s.caps[a.Name]; !ok || a.Current.Less(cp) {
			s.setCap(a.Name, a.Current, true)
		}
	}
}

func (c *Cache) uncount(in Instance) {
	s := &c.st
	if s.releases[in.Release]--; s.releases[in.Release] <= 0 {
		delete(s.releases, in.Release)
		if in.Release == s.floor {
			// The lowest of the releases still held: as many as there are
			// distinct releases, a handful, not one per instance.
			s.floor = 0
			for r := range s.releases {
				if s.floor == 0 || r < s.floor {
					s.floor = r
				}
			}
		}
	}
	for _, a := range in.APIs {
		vs := s.versions[a.Name]
		if vs[a.Current]--; vs[a.Current] > 0 {
			continue
		}
		delete(vs, a.Current)
		if len(vs) == 0 {
			delete(s.versions, a.Name)
			s.setCap(a.Name, Version{}, false)
			continue
		}
		if a.Current == s.caps[a.Name] {
			var low Version
			first := true
			for v := range vs {
				if first || v.Less(low) {
					low, first = v, false
				}
			}
			s.setCap(a.Name, low, true)
		}
	}
}

// setCap changes one cap; the map is copied first, since the view the hot
// path reads shares it.
func (s *cacheState) setCap(api string, v Version, ok bool) {
	caps := make(map[string]Version, len(s.caps)+1)
	for k, x := range s.caps {
		caps[k] = x
	}
	if ok {
		caps[api] = v
	} else {
		delete(caps, api)
	}
	s.caps = caps
}

// publish swaps in a new view when the floor, a cap, the finalized release
// or the cluster moved since before, and wakes the Changed waiters.
func (c *Cache) publish(before *cacheView) {
	s := &c.st
	if before != nil && before.cluster == s.cluster && before.floor == s.floor && before.finalized == s.finalized && sameCaps(before.caps, s.caps) {
		return // most changes move neither: no new view to allocate
	}
	c.view.Store(&cacheView{cluster: s.cluster, caps: s.caps, floor: s.floor, finalized: s.finalized})
	close(c.changed)
	c.changed = make(chan struct{})
}

func sameCaps(a, b map[string]Version) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// Retries of a failed refresh start after retryFirst and double up to
// retryMax (and never wait longer than the TTL): right after a NATS
// restart a remote registry may not have resubscribed yet.
const (
	retryFirst = 50 * time.Millisecond
	retryMax   = time.Second
)

// jittered is the wait for the next TTL check: the TTL less up to a
// fifth of it, at random, so that caches started together (a fleet after
// a restart, the fleet benchmark) do not all read their source at once.
func (c *Cache) jittered() time.Duration {
	return c.ttl - rand.N(c.ttl/5+1)
}

func (c *Cache) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTimer(c.jittered())
	defer t.Stop()
	retry := time.Duration(0)
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
			full = true
		case <-c.nudge:
			// A gap: give the missing notice a moment to arrive.
			if c.waitGap(ctx) {
				continue // it did
			}
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
			full = true
		}
		// A reply lost with a NATS node must not stall the cache for a
		// whole (possibly long) TTL.
		rctx, cancel := context.WithTimeout(ctx, min(c.ttl, readTimeout))
		var err error
		if full {
			err = c.Refresh(rctx)
		} else {
			err = c.CatchUp(rctx)
		}
		cancel()
		wait := c.jittered()
		if err != nil && ctx.Err() == nil {
			// Keep serving the last view: a stale cap is safe (it is
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

// waitGap waits until the gap the cache saw is gapWait old, and reports
// whether it closed meanwhile.
func (c *Cache) waitGap(ctx context.Context) bool {
	c.mu.Lock()
	since := c.st.gapSince
	c.mu.Unlock()
	if since.IsZero() {
		return true
	}
	select {
	case <-ctx.Done():
		return true
	case <-time.After(time.Until(since.Add(gapWait))):
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.gapSince.IsZero()
}

// beginRead returns the revision the cache holds and, for a full
// snapshot, marks its read in progress.
func (c *Cache) beginRead(full bool) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.reading = full
	return c.st.rev
}

// readFailed ends a read that returned nothing: the notices kept
// meanwhile are applied as they can be.
func (c *Cache) readFailed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.reading = false
	before := c.view.Load()
	c.settle()
	c.publish(before)
}

// Refresh reads a full snapshot of the source now, and applies the
// notices that arrived meanwhile above its revision.
func (c *Cache) Refresh(ctx context.Context) error {
	c.reads.Lock()
	defer c.reads.Unlock()
	return c.refresh(ctx)
}

func (c *Cache) refresh(ctx context.Context) error {
	c.beginRead(true)
	snap, err := c.src.Snapshot(ctx)
	c.met.refreshed(err)
	if err != nil {
		c.readFailed()
		return fmt.Errorf("services: cache refresh: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.view.Load()
	pending := c.st.pending
	c.st = cacheState{rev: snap.Revision, cluster: snap.Cluster, finalized: snap.Finalized, takenAt: snap.TakenAt,
		byID: make(map[string]*Instance, len(snap.Instances)), gone: map[string]goneRecord{},
		releases: map[int64]int{}, versions: map[string]map[Version]int{}, caps: map[string]Version{}}
	for i := range snap.Instances {
		c.put(&snap.Instances[i])
	}
	c.stats.Snapshots++
	c.stats.RowsRead += uint64(len(snap.Instances))
	if c.hook != nil {
		c.hook(CacheEvent{Kind: "snapshot", Revision: c.st.rev, Rows: len(snap.Instances)})
	}
	c.st.pending = pending
	c.settle()
	c.publish(before)
	return nil
}

// CatchUp reads the changes after the cache's revision from its source
// and applies them; a source that cannot list changes is read whole.
// Notices keep applying while it reads (a read may take a while under
// load, and the floor and caps must not wait for it): what it returns
// replaces only what is older by revision.
func (c *Cache) CatchUp(ctx context.Context) error {
	c.reads.Lock()
	defer c.reads.Unlock()
	cs, ok := c.src.(ChangeSource)
	if !ok {
		return c.refresh(ctx)
	}
	since := c.beginRead(false)
	d, err := cs.Changes(ctx, since)
	c.met.refreshed(err)
	if err != nil {
		c.readFailed()
		// A remote registry of an older release has no changes endpoint.
		c.log.Info("registry changes unavailable; reading a snapshot", "err", err)
		return c.refresh(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.view.Load()
	s := &c.st
	for i := range d.Changed {
		c.put(&d.Changed[i]) // kept only when newer than what notices brought meanwhile
	}
	for _, id := range d.Lapsed {
		// An instance changed after the read began is as its notice
		// says: a heartbeat that brought it back, for one.
		if in, ok := s.byID[id]; ok && (in.State == StateUp || in.State == StateDraining) && in.Revision <= d.Revision {
			missing := *in
			missing.State = StateMissing
			s.byID[id] = &missing
			s.snap = nil
		}
	}
	s.finalized = max(s.finalized, d.Finalized)
	s.rev = max(s.rev, d.Revision)
	if d.TakenAt.After(s.takenAt) {
		s.takenAt = d.TakenAt
	}
	rows := len(d.Changed) + len(d.Lapsed)
	c.stats.CatchUps++
	c.stats.RowsRead += uint64(rows)
	if c.hook != nil {
		c.hook(CacheEvent{Kind: "catch-up", Revision: s.rev, Rows: rows})
	}
	c.settle()
	c.publish(before)
	return nil
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
	v, ok := c.view.Load().caps[api]
	return v, ok
}

// Cluster is the identity of the cluster the cache follows, from its
// source's snapshot; rpcver clients capped by the cache use it.
func (c *Cache) Cluster() string { return c.view.Load().cluster }

// Floor returns the release floor (0 when no instance is registered).
func (c *Cache) Floor() int64 { return c.view.Load().floor }

// Revision returns the registry revision the cache holds.
func (c *Cache) Revision() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.rev
}

// Instance returns the cached instance with that id, if it is not deleted.
func (c *Cache) Instance(id string) (Instance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if in, ok := c.st.byID[id]; ok {
		return *in, true
	}
	return Instance{}, false
}

// Len returns how many instances the cache holds (deleted ones are not held).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.st.byID)
}

// Stats returns what the cache did so far.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Revision = c.st.rev
	return s
}

// Snapshot returns the cached registry, ordered by service and id as
// Registry.Snapshot is. It is built from the cache's instances on the
// first call after a change; treat it as read-only.
func (c *Cache) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.st
	if s.snap == nil {
		ins := make([]Instance, 0, len(s.byID))
		for _, in := range s.byID {
			ins = append(ins, *in)
		}
		slices.SortFunc(ins, func(a, b Instance) int {
			return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.ID, b.ID))
		})
		s.snap = &Snapshot{Cluster: s.cluster, Instances: ins, Finalized: s.finalized, Revision: s.rev, TakenAt: s.takenAt}
	}
	snap := *s.snap
	snap.Finalized, snap.Revision, snap.TakenAt = s.finalized, s.rev, s.takenAt
	return snap
}

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
