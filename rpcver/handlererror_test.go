package rpcver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/internal/natstest"
	"github.com/tandem-go/tandem/rpcver"
)

// leakyStore fails the way a store meeting its database does: with text
// no caller should see.
type leakyStore struct{ inventory.Store }

const leak = `inventory: put "a" at write-both: pq: duplicate key value violates unique constraint "items_pkey" (SQLSTATE 23505) in UPDATE items SET secret_col = $1 WHERE id = $2 on db.internal:5432`

func (leakyStore) Put(context.Context, *pb.Item, bool) error { return errors.New(leak) }
func (leakyStore) Rename(context.Context, string, string) (*pb.Item, error) {
	panic("boom: " + leak)
}
func (leakyStore) Get(context.Context, string) (*pb.Item, error) {
	return nil, fmt.Errorf("wrapped: %w", &rpcver.StatusError{Code: rpcver.CodeNotFound, Message: "no item a", Err: errors.New(leak)})
}

// syncBuffer is a log destination the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHandlerErrorsAreGeneric: a handler error that is no StatusError, or
// a panic, reaches the caller as CodeInternal with an id and nothing of
// the error; the server's log has the id with the whole error. A
// StatusError still reaches the caller as chosen, without its cause.
func TestHandlerErrorsAreGeneric(t *testing.T) {
	ns := natstest.New(t)
	nc := natstest.Connect(t, ns)
	logs := &syncBuffer{}
	startServer(t, nc, inventory.API, leakyStore{inventory.NewMemStore()},
		rpcver.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	client := newClient(t, nc, inventory.API, nil)
	ctx := context.Background()
	idRe := regexp.MustCompile(`error id ([0-9a-f]{16})\b`)
	seen := map[string]bool{}
	for _, tc := range []struct {
		name   string
		call   func() error
		code   string
		logged string // what the log line has besides the id
	}{
		{"error", func() error {
			_, err := inventory.PutItem.Call(ctx, client, &pb.PutItemRequest{Item: &pb.Item{Id: "a"}})
			return err
		}, rpcver.CodeInternal, leak},
		{"panic", func() error {
			_, err := inventory.RenameItem.Call(ctx, client, &pb.RenameItemRequest{Id: "a", Name: "b"})
			return err
		}, rpcver.CodeInternal, "boom: " + leak},
		{"status", func() error {
			_, err := inventory.GetItem.Call(ctx, client, &pb.GetItemRequest{Id: "a"})
			return err
		}, rpcver.CodeNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var re *rpcver.RemoteError
			if !errors.As(err, &re) || re.Code != tc.code || !errors.Is(err, rpcver.ErrRemote) {
				t.Fatalf("err = %v, want a RemoteError %s", err, tc.code)
			}
			for _, secret := range []string{"pq:", "items_pkey", "SQLSTATE", "secret_col", "db.internal", "boom"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the caller sees %q: %v", secret, err)
				}
			}
			if tc.logged == "" {
				if re.Description != "no item a" {
					t.Fatalf("description %q, want the StatusError's message", re.Description)
				}
				return
			}
			m := idRe.FindStringSubmatch(re.Description)
			if m == nil {
				t.Fatalf("description %q has no error id", re.Description)
			}
			if seen[m[1]] {
				t.Fatalf("error id %s given twice", m[1])
			}
			seen[m[1]] = true
			var line string
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, "error_id="+m[1]) {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, "level=ERROR") {
				t.Fatalf("no error logged with id %s:\n%s", m[1], logs.String())
			}
			// The text handler quotes the error; compare unquoted.
			if !strings.Contains(strings.ReplaceAll(line, `\"`, `"`), tc.logged) {
				t.Fatalf("log line lacks the error text %q:\n%s", tc.logged, line)
			}
		})
	}
}
