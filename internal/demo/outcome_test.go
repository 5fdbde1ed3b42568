package demo

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/tandem-go/tandem/examples/inventory"
	"github.com/tandem-go/tandem/internal/history"
	"github.com/tandem-go/tandem/rpcver"
)

// A write counts as not applied only when the answer or the error says so;
// anything that leaves the outcome open is modelled as possibly applied.
func TestOutcomes(t *testing.T) {
	remote := func(code string) error { return &rpcver.RemoteError{API: "inventory", Method: "PutItem", Code: code} }
	wrap := func(err error) error { return fmt.Errorf("rpcver: call inventory.PutItem: %w", err) }
	tests := []struct {
		name string
		err  error
		rpc  history.Outcome
		db   history.Outcome
	}{
		{"acknowledged", nil, history.Applied, history.Applied},
		{"timed out", wrap(context.DeadlineExceeded), history.Unknown, history.Unknown},
		{"nats timeout", wrap(nats.ErrTimeout), history.Unknown, history.Unknown},
		{"not sent, NATS down", &rpcver.DisconnectedError{API: "inventory", Method: "PutItem", Status: "RECONNECTING"}, history.Refused, history.Unknown},
		{"sent, then NATS dropped", &rpcver.DisconnectedError{API: "inventory", Method: "PutItem", Status: "RECONNECTING", InFlight: true, Err: context.DeadlineExceeded}, history.Unknown, history.Unknown},
		{"no server listens", &rpcver.NoServerError{API: "inventory", Subject: "tandem.inventory.PutItem.v1.2"}, history.Refused, history.Unknown},
		{"reconnect buffer off", wrap(nats.ErrReconnectBufExceeded), history.Refused, history.Unknown},
		{"bad request", remote(rpcver.CodeBadRequest), history.Refused, history.Unknown},
		{"conflict: a newer write is stored", remote(rpcver.CodeConflict), history.Refused, history.Unknown},
		// The server backports the response after the handler wrote.
		{"response not backported", remote(rpcver.CodeCannotBackport), history.Unknown, history.Unknown},
		{"internal error", remote(rpcver.CodeInternal), history.Unknown, history.Unknown},
		{"handler out of time", remote(rpcver.CodeDeadlineExceeded), history.Unknown, history.Unknown},
		{"not backported before sending", &rpcver.CannotBackportError{Field: "inventory.v1.PutItemRequest.create_only"}, history.Refused, history.Unknown},
		{"the store refused a late write", errLate, history.Unknown, history.Refused},
		{"no instance up", errNoInstance, history.Unknown, history.Refused},
		{"a database error", errors.New("database is locked"), history.Unknown, history.Unknown},
		{"item exists", fmt.Errorf("put: %w", inventory.ErrExists), history.Unknown, history.Refused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rpcOutcome(tt.err); got != tt.rpc {
				t.Errorf("rpcOutcome(%v) = %s, want %s", tt.err, got, tt.rpc)
			}
			if got := dbOutcome(tt.err); got != tt.db {
				t.Errorf("dbOutcome(%v) = %s, want %s", tt.err, got, tt.db)
			}
		})
	}
}
