package rpcver

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// TimeoutHeader carries, in whole milliseconds, how long the caller will
// still wait for an answer when it sends a request (gRPC's grpc-timeout,
// in one unit). It is relative, not a wall-clock deadline, so clocks that
// disagree between hosts do not shorten or stretch it. The server runs the
// handler under a context that ends after that long, so a request the
// caller has given up on, and may have retried, stops instead of
// committing after the retry.
//
// The budget starts when the server dispatches the request: time spent on
// the wire and queued behind earlier requests of the same endpoint is not
// subtracted, so the handler may run slightly past the caller's deadline,
// never for longer than the caller's whole budget.
const TimeoutHeader = "Tandem-Timeout"

// maxTimeoutDigits bounds the header's value to 9 digits (about 11.5 days),
// so no input can overflow.
const maxTimeoutDigits = 9

// timeoutHeader is the header for a caller that waits d more. It rounds
// down, so the server never outlives the caller by rounding.
func timeoutHeader(d time.Duration) nats.Header {
	ms := d.Milliseconds()
	if ms > 999_999_999 {
		ms = 999_999_999
	}
	return nats.Header{TimeoutHeader: []string{strconv.FormatInt(ms, 10)}}
}

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
// server's, ended after the caller's remaining time (the request's
// TimeoutHeader) or, when the request carries none, after the server's
// default handler timeout (none when zero). A malformed header is a bad
// request.
func handlerContext(parent context.Context, hdr nats.Header, def time.Duration) (context.Context, context.CancelFunc, *requestError) {
	d := def
	if vs := hdr[TimeoutHeader]; len(vs) > 0 {
		t, ok := parseTimeout(vs[0])
		if !ok {
			return nil, nil, &requestError{code: CodeBadRequest, msg: TimeoutHeader + " " + strconv.Quote(vs[0]) + " is not a whole number of milliseconds (at most 9 digits)"}
		}
		d = t
	} else if d <= 0 {
		return parent, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(parent, d)
	return ctx, cancel, nil
}
