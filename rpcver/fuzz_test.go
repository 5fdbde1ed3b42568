package rpcver_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tandem-go/tandem/examples/inventory"
	pb "github.com/tandem-go/tandem/examples/inventory/inventorypb"
	"github.com/tandem-go/tandem/rpcver"
)

// FuzzDecodeRequest feeds a server's request decoding any subject version
// token and any payload: it must answer with a code or a request, never
// panic, and accept only versions in its range.
func FuzzDecodeRequest(f *testing.F) {
	seed := func(m proto.Message) []byte { b, _ := proto.Marshal(m); return b }
	put := seed(&pb.PutItemRequest{Item: &pb.Item{Id: "a", Price: 3, Labels: map[string]string{"tag/x": ""}, Tags: []string{"y"}}, CreateOnly: true})
	for _, tok := range []string{"0", "1", "2", "3", "999999", "1000000", "", "-1", "+1", "01", "1.2", "x", "\xff", "2.t4096", "2.t0", "2.t", "2.t1234567890", "2.tx", "t5", "1.2.t5"} {
		f.Add(tok, put)
	}
	f.Add("1", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add("2", []byte{0x7f})
	api := inventory.API
	old, err := inventory.NewAPI(rpcver.WithCurrent(v1_1), rpcver.WithOldest(v1_1))
	if err != nil {
		f.Fatal(err)
	}
	newReq := func() proto.Message { return &pb.PutItemRequest{} }
	f.Fuzz(func(t *testing.T, tok string, data []byte) {
		for _, a := range []*rpcver.API{api, old} {
			m, v, code := rpcver.DecodeRequest(a, "PutItem", "tandem.inventory.PutItem.v1."+tok, data, newReq)
			switch code {
			case "":
				if m == nil || v.Less(a.Oldest()) || a.Current().Less(v) {
					t.Fatalf("accepted %s outside %s-%s (or no message)", v, a.Oldest(), a.Current())
				}
			case rpcver.CodeBadRequest, rpcver.CodeUnsupportedVersion:
			default:
				t.Fatalf("unexpected code %q", code)
			}
		}
	})
}

// FuzzObjectUnmarshal: stored bytes from anywhere decode or fail with
// ErrBadObject, never panic.
func FuzzObjectUnmarshal(f *testing.F) {
	objs, err := rpcver.NewObjects[*pb.Item](inventory.API, capAt(v1_0))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := objs.Marshal(&pb.Item{Id: "a", PriceCents: 300})
	f.Add(good)
	f.Add([]byte{0x7f, 1})
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := objs.Load(data)
		if err != nil {
			if !errors.Is(err, rpcver.ErrBadObject) {
				t.Fatalf("err = %v, want ErrBadObject", err)
			}
			return
		}
		if l.Msg == nil {
			t.Fatal("no message and no error")
		}
	})
}

// FuzzTimeoutHeader: any TimeoutHeader value parses to a non-negative
// duration of at most 9 digits of milliseconds, or is refused; never a panic.
func FuzzTimeoutHeader(f *testing.F) {
	for _, s := range []string{"0", "1", "1500", "999999999", "1000000000", "", "-1", "+1", "1.5", "10s", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := rpcver.ParseTimeout(s)
		if !ok {
			return
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || len(s) > 9 || d != time.Duration(n)*time.Millisecond {
			t.Fatalf("%q parsed to %v", s, d)
		}
	})
}
