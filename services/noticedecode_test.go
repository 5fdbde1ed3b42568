package services

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
	"unsafe"
)

// noticeSamples are the notices a registry publishes, and some it does
// not: each must decode as encoding/json decodes it.
func noticeSamples(t testing.TB) [][]byte {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	in := Instance{ID: "i00042", Service: "volume", Host: "h1", Release: 42, State: StateUp,
		APIs:      []API{{Name: "price", Current: Version{1, 2}, Oldest: Version{1, 0}}, {Name: "volume", Current: Version{3, 2}, Oldest: Version{3, 0}}},
		StartedAt: at, HeartbeatAt: at.Add(time.Second), Metadata: map[string]string{"zone": "eu-1", "note": "caf\u00e9 \"quoted\"\n"},
		Phases: map[string]string{"price": "write-both"}, Incarnation: 3, PID: 4242, Revision: 1234567, Freeze: 2}
	var out [][]byte
	add := func(c Change) {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(changeOf("register", in))
	gone := in
	gone.State, gone.Metadata, gone.Phases, gone.APIs = StateDeleted, nil, nil, nil
	add(changeOf("delete", gone))
	add(Change{Event: "finalize", Revision: 9, Finalized: 41, At: at})
	add(Change{Event: EventWriteFreeze, At: at}) // a freeze or thaw recorded in the ledger
	bare := Instance{ID: "a", Service: "s", Release: 1, State: StateDraining, Revision: 2}
	add(changeOf("state", bare))
	acked := in
	acked.Freeze = 3
	add(changeOf("freeze", acked))
	for _, s := range []string{
		`{"event":"freeze","revision":3,"record":{"id":"a","freeze":4,"freeze":5}}`, // a key twice
		`{"event":"freeze","revision":3,"record":{"id":"a","freeze":"4"}}`,          // another type
		`{"event":"register","instance":"a","at":"2026-03-01T12:00:00Z"}`,           // an older registry's notice
		` { "event" : "apis" , "revision" : 7 , "record" : { "id" : "a" , "apis" : [ ] , "phases" : { } } } `,
		`{"event":"apis","revision":7,"record":{"id":"a","apis":[{"name":"x","current":" 1.2 ","oldest":"1.0"}]}}`,
		`{"event":"register","revision":7,"unknown":{"deep":[1,-2.5e3,true,false,null,"\u00e9\n",{}]},"record":{"id":"a","extra":[]}}`,
		`{"Event":"register","revision":7}`,                    // another case: encoding/json matches it
		`{"event":"register","revision":7,"revision":8}`,       // a key twice
		`{"event":"register","revision":7.0}`,                  // a fraction
		`{"event":"register","revision":1e3}`,                  // an exponent
		`{"event":"register","revision":"7"}`,                  // another type
		`{"event":"register","revision":99999999999999999999}`, // too large
		`{"event":"register","revision":-0,"release":-12}`,     // negative
		`{"event":"register","revision":01}`,                   // invalid
		`{"event":"register","record":null,"revision":3}`,      // a null
		`{"event":"re\u0067ister","instance":"\u0061","revision":3,"record":{"id":"\u0061","host":"\ud800"}}`,
		`{"event":"register","revision":3,"record":{"id":"a","phases":{"m":"x","m":"y"}}}`, // a map key twice
		`{"event":"register","revision":3,"record":{"id":"a","started_at":"2026-03-01T12:00:00+02:00"}}`,
		`{"event":"register","revision":3,"record":{"id":"a","started_at":"yesterday"}}`,
		`{"event":"register","revision":3,"record":{"id":"a","apis":[{"name":"x","current":"1.02"}]}}`,
		`{"event":"register","revision":3,"record":{"id":"a","apis":[null]}}`,
		`{"event":"register","revision":3,"record":{"id":"a","pid":12}} x`, // trailing garbage
		`{"event":"register","revision":3,}`,
		`{"event":"register" "revision":3}`,
		`{"event":"bad\x01"}`,
		`{"event":"\x"}`,
		`{"event":"\u12"}`,
		`{"ev`, `{`, ``, `null`, `[]`, `"x"`, `{}`, `{"a":[1,2,}`, `{"a":tru}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

func checkDecodeChange(t *testing.T, b []byte, held *cacheState) {
	t.Helper()
	got, gerr := decodeChange(b, held)
	var want Change
	werr := json.Unmarshal(b, &want)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%s: error %v, encoding/json says %v", b, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", b, got, want)
	}
	if werr == nil && !reflect.DeepEqual(got.Record, want.Record) {
		t.Fatalf("%s: record\n got %#v\nwant %#v", b, got.Record, want.Record)
	}
}

// TestDecodeChangeAsEncodingJSON: every sample decodes as encoding/json
// decodes it, with and without a cache's instances to borrow from; the
// registry's own notices take the fast path, and borrow what is unchanged.
func TestDecodeChangeAsEncodingJSON(t *testing.T) {
	samples := noticeSamples(t)
	held := &cacheState{byID: map[string]*Instance{}, gone: map[string]goneRecord{}}
	for _, b := range samples {
		checkDecodeChange(t, b, nil)
	}
	for _, b := range samples[:4] {
		var ch Change
		if err := json.Unmarshal(b, &ch); err != nil {
			t.Fatal(err)
		}
		if ch.Record != nil && ch.Record.State != StateDeleted {
			held.byID[ch.Record.ID] = ch.Record
		}
	}
	for _, b := range samples {
		checkDecodeChange(t, b, held)
	}
	for i, b := range samples[:4] {
		d := noticeDecoder{b: b, held: held}
		ch, ok := d.change()
		if !ok {
			t.Fatalf("sample %d (%s) left the fast path", i, b)
		}
		if i != 0 {
			continue
		}
		like := held.byID["i00042"]
		for _, p := range [][2]string{{ch.Instance, like.ID}, {ch.Record.ID, like.ID}, {ch.Record.Service, like.Service},
			{ch.Record.Host, like.Host}, {ch.Record.APIs[0].Name, like.APIs[0].Name}, {ch.Record.Metadata["zone"], like.Metadata["zone"]}} {
			if unsafe.StringData(p[0]) != unsafe.StringData(p[1]) {
				t.Errorf("%q is a copy of the held instance's", p[0])
			}
		}
		if &ch.Record.APIs[0] != &like.APIs[0] {
			t.Error("the APIs are a copy of the held instance's")
		}
		if reflect.ValueOf(ch.Record.Phases).UnsafePointer() != reflect.ValueOf(like.Phases).UnsafePointer() ||
			reflect.ValueOf(ch.Phases).UnsafePointer() != reflect.ValueOf(like.Phases).UnsafePointer() {
			t.Error("the phases are a copy of the held instance's")
		}
	}
}

// TestDecodeChangeAllocations: a registration notice of an instance the
// cache holds, unchanged but for its release and APIs, allocates the
// record and its APIs and nothing else.
func TestDecodeChangeAllocations(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := &Instance{ID: "i00042", Service: "volume", Host: "h1", Release: 41, State: StateUp,
		APIs:      []API{{Name: "volume", Current: Version{3, 1}, Oldest: Version{3, 0}}},
		StartedAt: at, HeartbeatAt: at, Phases: map[string]string{"price": "write-both"}, Incarnation: 1, Revision: 10}
	held := &cacheState{byID: map[string]*Instance{}, gone: map[string]goneRecord{old.ID: {rev: 11, last: old}}}
	next := *old
	next.Release, next.Incarnation, next.Revision = 42, 2, 12
	next.APIs = []API{{Name: "volume", Current: Version{3, 2}, Oldest: Version{3, 0}}}
	b, err := json.Marshal(changeOf("register", next))
	if err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := decodeChange(b, held); err != nil {
			t.Fatal(err)
		}
	})
	if n > 2 {
		t.Errorf("%v allocations per notice, want at most 2 (the record, its APIs)", n)
	}
}

func FuzzDecodeChange(f *testing.F) {
	for _, b := range noticeSamples(f) {
		f.Add(b)
	}
	held := &cacheState{byID: map[string]*Instance{"a": {ID: "a", Service: "s", Host: "h", State: StateUp,
		APIs: []API{{Name: "x", Current: Version{1, 2}, Oldest: Version{1, 0}}}, Phases: map[string]string{"m": "x"}, Metadata: map[string]string{}}},
		gone: map[string]goneRecord{}}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecodeChange(t, b, nil)
		checkDecodeChange(t, b, held)
	})
}

// BenchmarkDecodeChange: a registration notice decoded by a cache that
// holds the instance's last record, against encoding/json.
func BenchmarkDecodeChange(b *testing.B) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	old := &Instance{ID: "i00042", Service: "volume", Host: "h1", Release: 41, State: StateUp,
		APIs:      []API{{Name: "volume", Current: Version{3, 1}, Oldest: Version{3, 0}}},
		StartedAt: at, HeartbeatAt: at, Phases: map[string]string{"price": "write-both"}, Incarnation: 1, PID: 4242, Revision: 10}
	held := &cacheState{byID: map[string]*Instance{}, gone: map[string]goneRecord{old.ID: {rev: 11, last: old}}}
	next := *old
	next.Release, next.Incarnation, next.Revision = 42, 2, 12
	next.StartedAt, next.HeartbeatAt = at.Add(time.Minute), at.Add(time.Minute)
	next.APIs = []API{{Name: "volume", Current: Version{3, 2}, Oldest: Version{3, 0}}}
	msg, err := json.Marshal(changeOf("register", next))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tandem", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeChange(msg, held); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var ch Change
			if err := json.Unmarshal(msg, &ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
