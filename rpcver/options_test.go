package rpcver_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tandem-go/tandem/rpcver"
)

// One Option type: servers and clients share WithPrefix, WithCluster,
// WithLogger and WithMetrics, and each constructor refuses what does not
// apply to it, before it needs a connection.
func TestOptionsApplyWhereTheyBelong(t *testing.T) {
	api := inventoryAt(t, rpcver.Version{Major: 1, Minor: 2})
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"a server takes no call timeout", func() error { _, err := rpcver.NewServer(nil, api, rpcver.WithTimeout(time.Second)); return err }(),
			"WithTimeout: does not apply to NewServer (it applies to NewClient)"},
		{"a client takes no handler timeout", func() error {
			_, err := rpcver.NewClient(nil, api, nil, rpcver.WithHandlerTimeout(time.Second))
			return err
		}(), "WithHandlerTimeout: does not apply to NewClient (it applies to NewServer)"},
		{"a nil logger", func() error { _, err := rpcver.NewClient(nil, api, nil, rpcver.WithLogger(nil)); return err }(), "a nil logger"},
		{"a call timeout of zero", func() error { _, err := rpcver.NewClient(nil, api, nil, rpcver.WithTimeout(0)); return err }(), "WithTimeout = 0s: must be positive"},
		{"a negative handler timeout", func() error {
			_, err := rpcver.NewServer(nil, api, rpcver.WithHandlerTimeout(-time.Second))
			return err
		}(), "WithHandlerTimeout = -1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var oe *rpcver.OptionError
			if !errors.Is(tc.err, rpcver.ErrInvalidOption) || !errors.Is(tc.err, rpcver.ErrInvalid) || !errors.As(tc.err, &oe) || !strings.Contains(tc.err.Error(), tc.want) {
				t.Fatalf("err = %v, want an *OptionError saying %q", tc.err, tc.want)
			}
		})
	}
}
