package demo

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/move"
	"github.com/tandem-go/tandem/rpcver"
)

// play runs the upgrade under load, then stops everything.
func (r *run) play(ctx context.Context) {
	nats := "embedded NATS at " + dialect.RedactURL(r.natsURL)
	if r.ns == nil {
		nats = "NATS at " + dialect.RedactURL(r.natsURL)
	}
	r.tl.printf("setup: %s on %s, %s; %d seeded rows per table", r.engine, r.where, nats, r.s.seedRows)
	r.tl.printf("moves: %s.price -> price_cents without triggers (releases 42 write both, 43 read new, 44 write new only); %s.price -> price_cents with triggers (release 42 carries every phase)",
		itemsMove.Table, catalogMove.Table)
	if r.cfg.Chaos {
		r.tl.printf("chaos: on (seed %d)", r.cfg.Seed)
	}

	bg, stopBg := context.WithCancel(ctx)
	var bgWG sync.WaitGroup
	bgWG.Add(1)
	go func() { defer bgWG.Done(); r.watch(bg) }()

	for i := range r.cfg.Instances {
		sl := &slot{n: i + 1, id: fmt.Sprintf("inventory-%d", i+1), release: firstRelease}
		r.slots = append(r.slots, sl)
		in, err := r.start(ctx, sl, firstRelease)
		if err != nil {
			r.problem("start %s: %v", sl.id, err)
			r.tl.printf("could not start %s: %v", sl.id, err)
			r.stopAll()
			stopBg()
			bgWG.Wait()
			return
		}
		sl.inst.Store(in)
		r.tl.printf("%s started: release %d, API inventory %s", sl.id, firstRelease, apiOf[firstRelease])
	}

	bgWG.Add(1)
	go func() { defer bgWG.Done(); r.operator(bg) }()

	// Load: RPC clients at the current API version, capped by the cache,
	// and database workers.
	stopLoad := make(chan struct{})
	var loadWG sync.WaitGroup
	var keysMu sync.Mutex
	var keys []*keyState
	client, err := rpcver.NewClient(r.loadNC, inventory.API, r.cache, rpcver.WithTimeout(r.s.attempt), rpcver.WithLogger(r.log))
	if err != nil {
		r.problem("client: %v", err)
	} else {
		for n := range r.cfg.Clients {
			loadWG.Add(1)
			go func() {
				defer loadWG.Done()
				ks := r.client(stopLoad, client, n+1)
				keysMu.Lock()
				keys = append(keys, ks...)
				keysMu.Unlock()
			}()
		}
	}
	for n := range r.cfg.Workers {
		loadWG.Add(1)
		go func() {
			defer loadWG.Done()
			ks := r.worker(stopLoad, n+1)
			keysMu.Lock()
			keys = append(keys, ks...)
			keysMu.Unlock()
		}()
	}
	r.tl.printf("load: %d RPC clients (API inventory %s, capped by the registry) and %d database workers", r.cfg.Clients, inventory.API.Current(), r.cfg.Workers)

	stopChaos := make(chan struct{})
	var chaosWG sync.WaitGroup
	if r.cfg.Chaos {
		chaosWG.Add(1)
		go func() { defer chaosWG.Done(); r.chaos(ctx, stopChaos) }()
	}

	r.sleep(ctx, r.s.warmup)
	r.rollout(ctx)

	// Chaos finishes its kills and its NATS restart, then stops.
	chaosDone := make(chan struct{})
	go func() { chaosWG.Wait(); close(chaosDone) }()
	select {
	case <-chaosDone:
	case <-time.After(r.s.phaseWait):
		r.problem("chaos did not finish within %s", r.s.phaseWait)
	case <-ctx.Done():
	}
	close(stopChaos)
	<-chaosDone
	r.sleep(ctx, r.s.warmup/2)
	close(stopLoad)
	loadWG.Wait()
	stopBg()
	bgWG.Wait()

	r.stopAll()
	r.tl.printf("load stopped, instances drained and deregistered")
	if r.cfg.Keep {
		r.tl.printf("kept the database: %s", r.where)
		// The ledger records the moves' definitions: no plan file needed.
		r.tl.printf("inspect it: tandem --db '%s' status", r.where)
		r.tl.printf("its moves, as recorded: tandem --db '%s' moves show", r.where)
	}
	r.keys = keys
}

// stopAll makes every instance leave for good: drained and deregistered.
func (r *run) stopAll() {
	for _, sl := range r.slots {
		sl.mu.Lock()
		if in := sl.inst.Swap(nil); in != nil {
			r.stop(in)
		}
		dctx, cancel := context.WithTimeout(context.Background(), r.s.opTimeout)
		_ = r.reg.Deregister(dctx, sl.id)
		cancel()
		sl.mu.Unlock()
	}
}

func (r *run) sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// rollout restarts the instances one at a time to each release, and waits
// after each release for the phase it enables.
func (r *run) rollout(ctx context.Context) {
	steps := []struct {
		release int64
		want    map[string]move.Phase
	}{
		{42, map[string]move.Phase{itemsMove.Name: move.ReadNew, catalogMove.Name: move.Contracted}},
		{43, map[string]move.Phase{itemsMove.Name: move.WriteNew}},
		{44, map[string]move.Phase{itemsMove.Name: move.Contracted}},
	}
	for _, st := range steps {
		r.tl.printf("rollout: release %d (API inventory %s), one instance at a time", st.release, apiOf[st.release])
		for _, sl := range r.slots {
			if ctx.Err() != nil {
				return
			}
			r.restart(ctx, sl, st.release)
			r.sleep(ctx, r.s.dwell)
		}
		if !r.waitPhase(ctx, st.want) {
			return
		}
	}
}

// restart replaces the slot's process by one of release.
func (r *run) restart(ctx context.Context, sl *slot, release int64) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	from := sl.release
	if from >= release && sl.inst.Load() != nil {
		r.tl.printf("%s already runs release %d", sl.id, from)
		return
	}
	note := ""
	if in := sl.inst.Swap(nil); in != nil {
		r.stop(in)
	} else {
		note = " (it was down)"
	}
	in, err := r.start(ctx, sl, release)
	if err != nil {
		r.problem("restart %s at release %d: %v", sl.id, release, err)
		r.tl.printf("%s: restart at release %d failed: %v", sl.id, release, err)
		return
	}
	sl.release = release
	sl.inst.Store(in)
	r.tl.printf("%s restarted: release %d -> %d (API inventory %s)%s", sl.id, from, release, apiOf[release], note)
}

// chaos kills an instance now and then, restarting it shortly after at its
// release, and restarts the embedded NATS server once, at a random turn.
// It returns when it has done all of that, or at stop.
func (r *run) chaos(ctx context.Context, stop <-chan struct{}) {
	natsTurn := -1
	if r.ns == nil {
		r.tl.printf("chaos: NATS is external, so only instances are killed")
	} else {
		natsTurn = r.randN(r.s.maxKills + 1)
	}
	for turn := 0; r.kills < r.s.maxKills || (natsTurn >= 0 && r.natsRestarts == 0); {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(r.randBetween(r.s.killEvery)):
		}
		if turn == natsTurn || (r.kills >= r.s.maxKills && natsTurn >= 0) {
			r.restartNATS()
			natsTurn = -2 // done, and never again
			turn++
			continue
		}
		if r.killOne(ctx) {
			turn++
		}
	}
}

func (r *run) killOne(ctx context.Context) bool {
	// Only when every other instance is up: a rolling restart may have one
	// down already, and the cluster keeps one serving.
	sl := r.slots[r.randN(len(r.slots))]
	if !sl.mu.TryLock() {
		return false
	}
	for _, o := range r.slots {
		if o.inst.Load() == nil {
			sl.mu.Unlock()
			return false
		}
	}
	in := sl.inst.Swap(nil)
	r.kill(in)
	r.kills++
	killedAt := time.Now()
	fl := r.cache.Floor()
	sl.mu.Unlock()
	pin := fmt.Sprintf("the floor is %d", fl)
	if fl == in.release {
		pin = fmt.Sprintf("it holds the floor at %d", fl)
	}
	r.tl.printf("chaos: killed %s (release %d) abruptly, without deregistering: its row still counts (%s) and gates wait for it until it returns", sl.id, in.release, pin)
	r.sleep(ctx, r.randBetween(r.s.killDown))
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.inst.Load() != nil {
		return true // the rollout restarted it meanwhile
	}
	release := sl.release
	back, err := r.start(context.WithoutCancel(ctx), sl, release)
	var tooOld *dualwrite.TooOldError
	if errors.As(err, &tooOld) && tooOld.Need > release {
		// The moves went on while it was down: its release may no longer
		// start, and the operator brings it back at the one named.
		r.tl.printf("chaos: %s may not come back at release %d: %v", sl.id, release, err)
		release = tooOld.Need
		back, err = r.start(context.WithoutCancel(ctx), sl, release)
	}
	if err != nil {
		r.problem("chaos: restart %s: %v", sl.id, err)
		r.tl.printf("chaos: %s could not come back: %v", sl.id, err)
		return true
	}
	sl.release = release
	sl.inst.Store(back)
	r.tl.printf("chaos: %s back at release %d after %s (registered again, replacing its row)", sl.id, release, time.Since(killedAt).Round(100*time.Millisecond))
	return true
}

// restartNATS stops the embedded server and starts it again on the same
// port with the same store; every connection reconnects.
func (r *run) restartNATS() {
	r.nsMu.Lock()
	defer r.nsMu.Unlock()
	// Stop it while writes are in flight: their callers must not learn the
	// outcome, and those that fail must not be applied afterwards.
	for deadline := time.Now().Add(r.s.attempt); r.inflight.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Microsecond)
	}
	r.natsInFlight = r.inflight.Load()
	r.tl.printf("chaos: NATS server stops, %s in flight", plural(r.natsInFlight, "write"))
	r.ns.Shutdown()
	r.ns.WaitForShutdown()
	time.Sleep(r.s.natsDown)
	var err error
	for i := 0; i < 50; i++ {
		var ns *natstest.Server
		if ns, err = natstest.Start(r.nsPort, r.nsDir); err == nil {
			r.ns = ns
			r.natsRestarts++
			r.tl.printf("chaos: NATS server back on port %d after %s; clients reconnect", r.nsPort, r.s.natsDown)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.ns = nil
	r.problem("chaos: NATS did not come back on port %d: %v", r.nsPort, err)
	r.tl.printf("chaos: NATS did not come back: %v", err)
}
