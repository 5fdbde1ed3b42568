package demo

import (
	"os"
	"time"

	"github.com/tandem-go/tandem/internal/history"
)

// Every key's history, every write attempt and every answered read of it
// with the times its caller sent it and heard back, plus the final read
// from price_cents after contract, is checked for linearizability: a
// register per key, where an acknowledged write took effect between its
// call and its answer, a write whose outcome its caller did not learn may
// have taken effect at any later time (or never), and a refused write took
// none.

// HistoryResult is what the history check found.
type HistoryResult struct {
	Keys int `json:"keys"`
	// Operations in the histories; UnknownWrites of them are writes whose
	// caller did not learn the outcome.
	Operations    int  `json:"operations"`
	UnknownWrites int  `json:"unknown_writes"`
	Linearizable  bool `json:"linearizable"`
	// Failures are the keys whose history is not linearizable, each with
	// its smallest failing part; Undecided the keys the checker could not
	// decide in time.
	Failures  []HistoryFailure `json:"failures,omitempty"`
	Undecided []string         `json:"undecided,omitempty"`
}

// HistoryFailure is one key whose history is not linearizable.
type HistoryFailure struct {
	Key        string `json:"key"`
	Operations int    `json:"operations"`
	// Minimal is its smallest failing part, one operation a line.
	Minimal []string `json:"minimal,omitempty"`
	// Visualization is porcupine's HTML view of the key's whole history.
	Visualization string `json:"visualization,omitempty"`
}

// finalReader is the history's client id of the final read.
func (r *run) finalReader() int { return r.cfg.Clients + r.cfg.Workers + 1 }

// historyCheck checks every key's history; the first failing one's whole
// history is also written as porcupine's HTML view, into a directory that
// outlives the run.
func (r *run) historyCheck() HistoryResult {
	const timeout = 20 * time.Second
	rep := r.hist.Check(history.CheckOptions{Timeout: timeout})
	res := HistoryResult{Keys: rep.Keys, Operations: rep.Ops, UnknownWrites: rep.Unknown, Linearizable: rep.Linearizable(), Undecided: rep.Undecided}
	for i, f := range rep.Failures {
		hf := HistoryFailure{Key: f.Key, Operations: f.Ops}
		for _, op := range f.Minimal {
			hf.Minimal = append(hf.Minimal, op.String())
		}
		if i == 0 {
			if dir, err := os.MkdirTemp("", "tandem-demo-history-*"); err == nil {
				if hf.Visualization, err = r.hist.Visualize(dir, f.Key, timeout); err != nil {
					r.problem("%v", err)
				}
			}
		}
		res.Failures = append(res.Failures, hf)
	}
	return res
}
