package services

import (
	"errors"
	"testing"
)

// The registry takes outside input as version strings, state names and, over
// NATS, JSON requests: none may panic or fail with an untyped error.

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"1.2", "0.0", "3.15", "1", "1.", ".1", "-1.2", "+1.2", "1.2.3", " 4.5 ", "99999999999999999999.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		back, err := ParseVersion(v.String())
		if err != nil || back != v {
			t.Fatalf("%q parsed as %v, which does not round-trip: %v %v", s, v, back, err)
		}
	})
}

func FuzzRemoteRequest(f *testing.F) {
	for _, s := range []string{
		`{"instance":{"id":"a","service":"s","release":1}}`,
		`{"instance":{"id":"a","service":"s","release":-1,"apis":[{"name":"x","current":"1.2","oldest":"1.3"}]}}`,
		`{"instance":{"id":"a","service":"s","release":1,"state":"sleeping"}}`,
		`{"id":"a","heartbeat":{"state":"up","phases":{"m":"read-new"}}}`,
		`{"instance":{"apis":[{"current":"x.y"}]}}`, `[]`, `null`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r registerRequest
		if err := decode(b, &r); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode: untyped error %v", err)
			}
			return
		}
		if err := r.Instance.normalize(); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("normalize: untyped error %v", err)
		}
		var h heartbeatRequest
		if err := decode(b, &h); err == nil && h.Heartbeat.APIs != nil {
			if err := validateAPIs(h.Heartbeat.APIs); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("heartbeat APIs: untyped error %v", err)
			}
		}
		if _, err := ParseState(string(b)); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("ParseState: untyped error %v", err)
		}
	})
}
