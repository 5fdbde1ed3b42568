// Package history records what callers saw of a store, one register per
// key, and checks each key's history for linearizability with porcupine.
//
// A last-value check only asks whether the final value is one a caller
// wrote. A history check asks more: whether every read, at the moment it
// ran, returned a value some order of the operations (each taking effect
// between its call and its return) allows. It catches a stale read, a
// write that came back after a newer one, and a write that was applied
// although its caller was told it was not.
//
// What a caller knows of a write decides how it is modelled: an
// acknowledged write took effect between its call and its return; a write
// whose outcome the caller does not know (a timeout, a disconnect) may have
// taken effect at any time after its call, or never; a write the store
// definitely refused took no effect. A read that failed tells nothing and
// is not recorded.
package history

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Outcome is what the caller knows of a write.
type Outcome int

const (
	// Applied: the write was acknowledged.
	Applied Outcome = iota
	// Unknown: the caller did not hear back (timeout, disconnect, an
	// internal error): the write may have been applied, at any time after
	// its call.
	Unknown
	// Refused: the store or the client definitely did not apply it (a
	// conflict, a bad request, never sent).
	Refused
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "ok"
	case Unknown:
		return "outcome unknown"
	case Refused:
		return "refused"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Op is one operation of a key's history. Times are since the recorder's
// start.
type Op struct {
	Client int
	Write  bool
	// Value is the value written or read; values are compared with ==, so
	// they must be comparable.
	Value any
	// Found is false for a read that found no value.
	Found   bool
	Outcome Outcome // of a write
	Call    time.Duration
	// Return is when the caller heard back; for a write of unknown outcome
	// it is when the caller gave up, and the checker lets the write take
	// effect at any later time.
	Return time.Duration
}

func (o Op) String() string {
	at := fmt.Sprintf("[%.3fs, %.3fs]", o.Call.Seconds(), o.Return.Seconds())
	switch {
	case o.Write && o.Outcome == Unknown:
		at = fmt.Sprintf("[%.3fs, gave up at %.3fs: may apply any time later]", o.Call.Seconds(), o.Return.Seconds())
		return fmt.Sprintf("client %d write %v %s", o.Client, o.Value, at)
	case o.Write:
		return fmt.Sprintf("client %d write %v %s %s", o.Client, o.Value, at, o.Outcome)
	case !o.Found:
		return fmt.Sprintf("client %d read -> not found %s", o.Client, at)
	}
	return fmt.Sprintf("client %d read -> %v %s", o.Client, o.Value, at)
}

// Recorder collects operations per key. It is safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    sync.Mutex
	keys  map[string][]Op
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder {
	return &Recorder{start: time.Now(), keys: map[string][]Op{}}
}

// Write records a write of v to key, called at call and answered (or given
// up on) at ret.
func (r *Recorder) Write(client int, key string, v any, call, ret time.Time, o Outcome) {
	r.add(key, Op{Client: client, Write: true, Value: v, Found: true, Outcome: o, Call: call.Sub(r.start), Return: ret.Sub(r.start)})
}

// Read records a read of key that returned v, or nothing when !found.
func (r *Recorder) Read(client int, key string, v any, found bool, call, ret time.Time) {
	if !found {
		v = nil
	}
	r.add(key, Op{Client: client, Value: v, Found: found, Call: call.Sub(r.start), Return: ret.Sub(r.start)})
}

func (r *Recorder) add(key string, op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keys[key] = append(r.keys[key], op)
}

// Keys returns the keys recorded, sorted.
func (r *Recorder) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ks := make([]string, 0, len(r.keys))
	for k := range r.keys {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// History returns a copy of key's operations, in the order recorded.
func (r *Recorder) History(key string) []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.keys[key])
}
