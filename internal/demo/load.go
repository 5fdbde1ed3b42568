package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/history"
	"github.com/tandem-go/tandem/rpcver"
)

// counters are the summary's numbers, updated by every goroutine.
type counters struct {
	rpcSent, dbSent, failed, retries, wrongReads, readsChecked, late atomic.Int64
}

// value is what a key holds: the three fields a write sets.
type value struct {
	name       string
	qty, cents int64
}

func (v value) String() string { return fmt.Sprintf("{%q qty %d, %d cents}", v.name, v.qty, v.cents) }

func valueOf(it *pb.Item) value {
	qty := it.GetQuantity()
	if it.GetQuantityMilli() != 0 {
		qty = it.GetQuantityMilli() / 1000
	}
	return value{name: it.GetName(), qty: qty, cents: inventory.Cents(it)}
}

// keyState is what the one goroutine owning a key knows of it.
type keyState struct {
	table   string
	id      string
	client  int  // the owner, as the history names it
	ops     int  // operations recorded in its history
	written bool // a write was sent, and may have landed
	acked   bool // want was acknowledged
	want    value
	// maybe holds the writes whose outcome is unknown since the last
	// acknowledged one: the key holds want or one of them.
	maybe []value
	n     int64
	// failed are the writes whose caller saw them fail, for the ghost check.
	failed []failedWrite
}

// key names the key in the history: table and id.
func (k *keyState) key() string { return k.table + "/" + k.id }

// attempt learns from one write attempt.
func (k *keyState) attempt(v value, o history.Outcome) {
	switch o {
	case history.Applied:
		k.written, k.want, k.acked, k.maybe = true, v, true, nil
	case history.Unknown:
		k.written, k.maybe = true, append(k.maybe, v)
	}
}

// accept checks a read against what the owner knows, and learns from it
// when a write's outcome was unknown.
func (k *keyState) accept(got value) bool {
	if k.acked && got == k.want {
		return true
	}
	for i, m := range k.maybe {
		if got == m {
			// Only a later attempt (a higher sequence number) may still
			// replace it: the store refuses older ones.
			k.want, k.acked, k.maybe = got, true, slices.Clone(k.maybe[i+1:])
			return true
		}
	}
	return false
}

// next returns the key's next value: whole units of price, so every API
// version can carry it.
func (k *keyState) next() value {
	k.n++
	return value{name: fmt.Sprintf("%s #%d", k.id, k.n), qty: k.n, cents: (k.n%997 + 1) * 100}
}

// retriable reports whether a failed call may be sent again: anything but
// an answer that says the request itself is wrong.
func retriable(err error) bool {
	var re *rpcver.RemoteError
	switch {
	case errors.Is(err, rpcver.ErrCannotBackport), errors.Is(err, rpcver.ErrMethodTooNew), errors.Is(err, rpcver.ErrInvalid),
		errors.Is(err, inventory.ErrNotFound), errors.Is(err, inventory.ErrExists):
		return false
	case errors.As(err, &re):
		return re.Code != rpcver.CodeBadRequest && re.Code != rpcver.CodeNotFound && re.Code != rpcver.CodeConflict && re.Code != rpcver.CodeCannotBackport
	}
	return true
}

// call runs one request, retrying within the deadline. Each attempt of a
// write sends a new value (the next sequence number), so every attempt is
// a request of its own in the history and in the ghost check.
func (r *run) call(what string, op func(ctx context.Context) error) error {
	deadline := time.Now().Add(r.s.deadline)
	backoff := 20 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), r.s.attempt)
		err := op(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, dualwrite.ErrFrozen) {
			// The operator froze the move's writes: refused, not failed,
			// and not retried (the caller would retry after the thaw).
			r.freeze.refused.Add(1)
			return err
		}
		if !retriable(err) || time.Now().Add(backoff).After(deadline) {
			r.st.failed.Add(1)
			r.problem("%s failed: %v", what, err)
			return err
		}
		r.st.retries.Add(1)
		r.log.Debug("retrying", "what", what, "err", err)
		time.Sleep(backoff)
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// rpcOutcome is what a PutItem's caller knows from its error. Only an
// answer that the request was refused before it was applied, or an error
// that says it was never sent, counts as not applied; anything else
// (timeouts, a dropped connection, an internal error, a response that
// could not be backported after the write) may have been applied.
func rpcOutcome(err error) history.Outcome {
	var re *rpcver.RemoteError
	var uv *rpcver.UnsupportedVersionError
	var cb *rpcver.CannotBackportError
	var de *rpcver.DisconnectedError
	switch {
	case err == nil:
		return history.Applied
	case errors.Is(err, rpcver.ErrFrozen):
		return history.Refused // code 423: refused before anything was written
	case errors.As(err, &de):
		// Not sent while disconnected; sent, it may have run.
		if de.InFlight {
			return history.Unknown
		}
		return history.Refused
	case errors.As(err, &re):
		if re.Code == rpcver.CodeBadRequest || re.Code == rpcver.CodeNotFound || re.Code == rpcver.CodeConflict {
			return history.Refused
		}
		return history.Unknown
	case errors.As(err, &uv), errors.As(err, &cb), errors.Is(err, rpcver.ErrMethodTooNew), errors.Is(err, rpcver.ErrInvalid),
		errors.Is(err, rpcver.ErrNoServer), errors.Is(err, nats.ErrReconnectBufExceeded):
		return history.Refused
	}
	return history.Unknown
}

// dbOutcome is what a worker's store put tells: a conflict (a newer write
// stored) or no instance to run it on applied nothing; any other error may
// have come after the commit.
func dbOutcome(err error) history.Outcome {
	switch {
	case err == nil:
		return history.Applied
	case errors.Is(err, errNoInstance), errors.Is(err, inventory.ErrExists), errors.Is(err, dualwrite.ErrFrozen):
		return history.Refused
	}
	return history.Unknown
}

// attempted records one write attempt, sent at sent and answered (or given
// up on) now: in the key's history, in what its owner knows, and, when the
// caller saw it fail, for the ghost check.
func (r *run) attempted(k *keyState, how string, v value, sent time.Time, err error, o history.Outcome) {
	now := time.Now()
	if o == history.Applied && r.freeze.violates(k.table, sent, now) {
		r.freeze.applied.Add(1)
		r.problem("%s %s applied while writes on %s were frozen everywhere (sent %s after the acknowledgement)", how, k.key(), itemsMove.Name, sent.Format(time.RFC3339Nano))
	}
	r.hist.Write(k.client, k.key(), v, sent, now, o)
	k.ops++
	k.attempt(v, o)
	if err != nil {
		if r.cfg.ghost != nil {
			r.sawFail.Store(appliedKey{table: k.table, id: k.id, qty: v.qty}, struct{}{})
		}
		k.failed = append(k.failed, failedWrite{how: how, qty: v.qty, sent: sent, failed: now, err: err.Error(), outcome: o})
	}
}

// observed records one answered read in the key's history.
func (r *run) observed(k *keyState, got *pb.Item, found bool, sent time.Time) {
	var v value
	if found {
		v = valueOf(got)
	}
	r.hist.Read(k.client, k.key(), v, found, sent, time.Now())
	k.ops++
}

// client is one RPC client goroutine: it writes and reads its own keys
// through the cluster, capped by the cache.
func (r *run) client(stop <-chan struct{}, c *rpcver.Client, n int) []*keyState {
	keys := make([]*keyState, r.s.keys)
	for j := range keys {
		keys[j] = &keyState{table: itemsMove.Table, id: fmt.Sprintf("rpc%d-%03d", n, j), client: n}
	}
	for i := 0; ; i++ {
		select {
		case <-stop:
			return keys
		case <-time.After(r.s.pace):
		}
		k := keys[r.randN(len(keys))]
		if !k.written || r.randN(10) < 6 {
			r.rpcPut(c, k)
		} else {
			r.rpcGet(c, k)
		}
	}
}

func (r *run) rpcPut(c *rpcver.Client, k *keyState) {
	r.st.rpcSent.Add(1)
	_ = r.call("PutItem "+k.id, func(ctx context.Context) error {
		v := k.next()
		req := &pb.PutItemRequest{Item: &pb.Item{Id: k.id, Name: v.name, Quantity: v.qty, PriceCents: v.cents}}
		r.inflight.Add(1)
		sent := time.Now()
		_, err := inventory.PutItem.Call(ctx, c, req)
		r.inflight.Add(-1)
		r.attempted(k, "PutItem", v, sent, err, rpcOutcome(err))
		return err
	})
}

func (r *run) rpcGet(c *rpcver.Client, k *keyState) {
	r.st.rpcSent.Add(1)
	var got *pb.Item
	var notFound error
	err := r.call("GetItem "+k.id, func(ctx context.Context) error {
		sent := time.Now()
		resp, err := inventory.GetItem.Call(ctx, c, &pb.GetItemRequest{Id: k.id})
		got, notFound = resp.GetItem(), nil
		if isRemoteNotFound(err) {
			notFound, err = err, nil // an answer, judged by read
		}
		if err == nil {
			r.observed(k, got, notFound == nil, sent)
		}
		return err
	})
	if err == nil && notFound != nil {
		err = notFound
	}
	r.read(k, "GetItem at "+c.Target().String(), got, err)
}

func (r *run) read(k *keyState, how string, got *pb.Item, err error) {
	switch {
	case err == nil:
		r.st.readsChecked.Add(1)
		if k.table == itemsMove.Table && r.freeze.on.Load() {
			r.freeze.reads.Add(1)
		}
		if v := valueOf(got); !k.accept(v) {
			r.st.wrongReads.Add(1)
			r.problem("wrong read: %s %s returned %v, last acknowledged %v", how, k.id, v, k.want)
		}
	case errors.Is(err, inventory.ErrNotFound) || isRemoteNotFound(err):
		if k.acked {
			r.st.wrongReads.Add(1)
			r.problem("wrong read: %s %s: not found, last acknowledged %v", how, k.id, k.want)
			return
		}
		k.written = false // nothing landed yet (a write of unknown outcome still may)
	}
}

func isRemoteNotFound(err error) bool {
	var re *rpcver.RemoteError
	return errors.As(err, &re) && re.Code == rpcver.CodeNotFound
}

// worker is one database worker: it reads and writes its own keys of both
// tables directly, through the store of an instance that is up (its
// own slot's when it can), at the phase that instance acts on.
func (r *run) worker(stop <-chan struct{}, n int) []*keyState {
	keys := make([]*keyState, r.s.keys)
	for j := range keys {
		t := itemsMove.Table
		if j%2 == 1 {
			t = catalogMove.Table
		}
		keys[j] = &keyState{table: t, id: fmt.Sprintf("db%d-%03d", n, j), client: r.cfg.Clients + n}
	}
	for {
		select {
		case <-stop:
			return keys
		case <-time.After(r.s.pace):
		}
		k := keys[r.randN(len(keys))]
		r.st.dbSent.Add(1)
		if !k.written || r.randN(10) < 6 {
			_ = r.call("store put "+k.table+" "+k.id, func(ctx context.Context) error {
				v := k.next()
				it := &pb.Item{Id: k.id, Name: v.name, Quantity: v.qty, PriceCents: v.cents}
				sent := time.Now()
				in := r.pick(n)
				if in == nil {
					r.attempted(k, "store put", v, sent, errNoInstance, history.Refused)
					return errNoInstance
				}
				ctx, cancel := mergeCancel(ctx, in.ctx)
				defer cancel()
				err := in.store(k.table).Put(ctx, it, false)
				r.attempted(k, "store put", v, sent, err, dbOutcome(err))
				return err
			})
			continue
		}
		var got *pb.Item
		var how string
		var notFound error
		err := r.call("store get "+k.table+" "+k.id, func(ctx context.Context) error {
			in := r.pick(n)
			if in == nil {
				return errNoInstance
			}
			ctx, cancel := mergeCancel(ctx, in.ctx)
			defer cancel()
			sent := time.Now()
			st := in.store(k.table)
			how = fmt.Sprintf("%s store get (release %d, %s)", k.table, in.release, in.phases()[st.Move().Name])
			var err error
			got, err = st.Get(ctx, k.id)
			notFound = nil
			if errors.Is(err, inventory.ErrNotFound) {
				notFound, err = err, nil // an answer, judged by read
			}
			if err == nil {
				r.observed(k, got, notFound == nil, sent)
			}
			return err
		})
		if err == nil && notFound != nil {
			err = notFound
		}
		r.read(k, how, got, err)
	}
}

var errNoInstance = errors.New("no instance up")

// pick returns the instance of slot n%len, or of the next slot that is up.
func (r *run) pick(n int) *instance {
	for i := range r.slots {
		if in := r.slots[(n+i)%len(r.slots)].inst.Load(); in != nil {
			return in
		}
	}
	return nil
}

// mergeCancel is ctx, also cancelled when other is.
func mergeCancel(ctx, other context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(other, cancel)
	return ctx, func() { stop(); cancel() }
}
