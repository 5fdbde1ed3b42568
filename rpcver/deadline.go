package rpcver

import (
	"context"
	"math/bits"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// TimeoutHeader carries, in whole milliseconds, how long the caller will
// still wait for an answer when it sends a request (gRPC's grpc-timeout,
// in one unit). rpcver clients send this in the subject's budget token
// instead (see Subject), which costs no header; the server reads the
// header when a request has no token, so a request sent by hand can set
// its caller's time too. It is relative, not a wall-clock deadline, so clocks that
// disagree between hosts do not shorten or stretch it. The server runs the
// handler under a context that ends after that long, so a request the
// caller has given up on, and may have retried, stops instead of
// committing after the retry.
//
// The budget starts when the request reaches the server: time spent
// waiting there for a handler (behind earlier requests of the endpoint) is
// subtracted, and a request whose budget is gone when its turn comes does
// not run. Only the time on the wire is not, which the rounding down of
// the subject's token more than covers for a caller's deadline.
const TimeoutHeader = "Tandem-Timeout"

// maxTimeoutDigits bounds the header's value to 9 digits (about 11.5 days),
// so no input can overflow.
const maxTimeoutDigits = 9

// parseTimeout reads a TimeoutHeader value: 1 to 9 ASCII digits.
func parseTimeout(s string) (time.Duration, bool) {
	if len(s) == 0 || len(s) > maxTimeoutDigits {
		return 0, false
	}
	n := int64(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return time.Duration(n) * time.Millisecond, true
}

// handlerContext is the context one request's handler runs under: the
// server's, ended after the caller's remaining time (the subject's budget
// token, or else the request's TimeoutHeader) or, when the request carries
// neither, after the server's default handler timeout (none when zero),
// counted from at, when the request reached the server. It has ended
// already when that time has passed. A malformed header is a bad request.
func handlerContext(dl *deadlines, at time.Time, budget time.Duration, hdr nats.Header, def time.Duration) (context.Context, context.CancelFunc, *requestError) {
	d := def
	if budget >= 0 {
		d = budget
	} else if vs := hdr[TimeoutHeader]; len(vs) > 0 {
		t, ok := parseTimeout(vs[0])
		if !ok {
			return nil, nil, &requestError{code: CodeBadRequest, msg: TimeoutHeader + " " + strconv.Quote(vs[0]) + " is not a whole number of milliseconds (at most 9 digits)"}
		}
		d = t
	} else if d <= 0 {
		return dl.parent, noCancel, nil
	}
	ctx, cancel := dl.until(at.Add(d), d)
	return ctx, cancel, nil
}

// deadlines hands handlers contexts that share one timer among requests
// whose deadlines fall close together. A context per request (a timer, and
// a place in the server context's children) was half of what carrying the
// caller's deadline cost a small call; here a request whose deadline is
// within a 32nd of its budget of a context already armed runs under that
// context instead. A handler thus never gets more than its caller's time,
// and at most about 3% less; a handler blocked on a database call is still
// cancelled at its deadline, and Shutdown still reaches every handler
// through the server's context.
type deadlines struct {
	parent context.Context
	// One armed context per budget class (the bit length of the budget in
	// nanoseconds), so budgets of different sizes do not evict each other.
	slots [64]atomic.Pointer[deadlineSlot]
}

type deadlineSlot struct {
	at     time.Time // the context's deadline, with its monotonic reading
	ctx    context.Context
	cancel context.CancelFunc // kept with its context; the context ends by itself
}

// noCancel is the cancel func of a shared context: it ends at its deadline
// or with the server, and its timer is released then.
func noCancel() {}

// until returns a context of parent that ends at want, give or take d/32
// early, d being the whole budget that ends then.
func (dl *deadlines) until(want time.Time, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 || !time.Now().Before(want) {
		// Already expired: no timer needed for the early answer.
		ctx, cancel := context.WithDeadline(dl.parent, time.Time{})
		return ctx, cancel
	}
	slot := &dl.slots[bits.Len64(uint64(d))]
	if s := slot.Load(); s != nil && !s.at.After(want) && s.at.After(want.Add(-d>>5)) {
		return s.ctx, noCancel
	}
	ctx, cancel := context.WithDeadline(dl.parent, want)
	slot.Store(&deadlineSlot{at: want, ctx: ctx, cancel: cancel})
	return ctx, noCancel
}
