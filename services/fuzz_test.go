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

// TestParseVersionStrict: one spelling per version; signs, leading zeros
// and anything but digits are refused.
func TestParseVersionStrict(t *testing.T) {
	for in, ok := range map[string]bool{
		"1.2": true, "0.0": true, "10.15": true, " 4.5 ": true, "999999999.1": true,
		"1.-0": false, "-1.2": false, "+1.2": false, "1.+2": false, "01.2": false, "1.02": false,
		"1": false, "1.": false, ".1": false, "1.2.3": false, "1e3.1": false, "1_0.1": false,
		"1234567890.1": false, "１.2": false,
	} {
		v, err := ParseVersion(in)
		if ok != (err == nil) {
			t.Errorf("ParseVersion(%q) = %v, %v; want ok=%v", in, v, err, ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseVersion(%q): untyped error %v", in, err)
		}
	}
	for _, v := range []Version{{Major: -1}, {Minor: -1}, {Major: -1, Minor: 2}} {
		if err := validateAPIs([]API{{Name: "x", Current: v}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("API version %v accepted: %v", v, err)
		}
		if err := validateAPIs([]API{{Name: "x", Current: Version{Major: 1}, Oldest: v}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("oldest version %v accepted: %v", v, err)
		}
	}
}
