package history

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// input and output are an operation as porcupine sees it.
type input struct {
	write bool
	v     any
}

type output struct {
	found   bool
	v       any
	outcome Outcome
}

// state is a register: empty until the first write takes effect.
type state struct {
	set bool
	v   any
}

// registerModel is one key: a read returns the last write that took
// effect, or nothing before the first; a refused write takes no effect.
var registerModel = porcupine.Model{
	Init: func() any { return state{} },
	Step: func(st, in, out any) (bool, any) {
		s, i, o := st.(state), in.(input), out.(output)
		if i.write {
			if o.outcome == Refused {
				return true, s
			}
			return true, state{set: true, v: i.v}
		}
		if !o.found {
			return !s.set, s
		}
		return s.set && s.v == o.v, s
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(input), out.(output)
		if i.write {
			return fmt.Sprintf("write %v (%s)", i.v, o.outcome)
		}
		if !o.found {
			return "read -> not found"
		}
		return fmt.Sprintf("read -> %v", o.v)
	},
	DescribeState: func(st any) string {
		s := st.(state)
		if !s.set {
			return "empty"
		}
		return fmt.Sprint(s.v)
	},
}

// operations turns ops into porcupine's form. A write of unknown outcome
// returns after everything else, so it may take effect at any time after
// its call, or (ordered last) not at all.
func operations(ops []Op) []porcupine.Operation {
	end := int64(0)
	for _, op := range ops {
		end = max(end, int64(op.Return), int64(op.Call))
	}
	out := make([]porcupine.Operation, len(ops))
	for i, op := range ops {
		ret := int64(op.Return)
		if op.Write && op.Outcome == Unknown {
			ret = end + 1
		}
		out[i] = porcupine.Operation{ClientId: op.Client, Input: input{write: op.Write, v: op.Value},
			Output: output{found: op.Found, v: op.Value, outcome: op.Outcome}, Call: int64(op.Call), Return: ret}
	}
	return out
}

// Report is the result of checking every key.
type Report struct {
	Keys    int // keys checked
	Ops     int // operations in their histories
	Unknown int // writes whose outcome their caller did not know
	// Failures are the keys whose history is not linearizable, each with
	// the smallest failing part of it.
	Failures []Failure
	// Undecided are keys the checker could not decide in time.
	Undecided []string
}

// Linearizable reports whether every key's history was checked and is
// linearizable.
func (r Report) Linearizable() bool { return len(r.Failures) == 0 && len(r.Undecided) == 0 }

// Failure is one key whose history is not linearizable.
type Failure struct {
	Key string
	Ops int // operations in its whole history
	// Minimal is a smallest failing part: a subset of the history that is
	// not linearizable, and is linearizable without any one of its
	// operations. Nil when minimising was not attempted.
	Minimal []Op
	// Visualization is the path of porcupine's HTML view of the whole
	// history (its partial linearizations), when one was written (see
	// Recorder.Visualize).
	Visualization string
}

// WriteText prints the failure: the key, then the smallest failing part,
// one operation a line.
func (f Failure) WriteText(w io.Writer, indent string) {
	fmt.Fprintf(w, "%shistory of %s is not linearizable (%d operations)", indent, f.Key, f.Ops)
	if len(f.Minimal) > 0 {
		n := fmt.Sprintf("%d operations", len(f.Minimal))
		if len(f.Minimal) == 1 {
			n = "1 operation"
		}
		fmt.Fprintf(w, "; the smallest failing part, %s:", n)
	}
	fmt.Fprintln(w)
	for _, op := range f.Minimal {
		fmt.Fprintf(w, "%s  %s\n", indent, op)
	}
	if f.Visualization != "" {
		fmt.Fprintf(w, "%s  whole history, with porcupine's partial linearizations: %s\n", indent, f.Visualization)
	}
}

func (f Failure) String() string {
	var b strings.Builder
	f.WriteText(&b, "")
	return strings.TrimRight(b.String(), "\n")
}

// CheckOptions tune Check.
type CheckOptions struct {
	// Timeout bounds the check of one key (default 10s); a key not decided
	// in time is reported as undecided, never as linearizable.
	Timeout time.Duration
	// Minimize is how many failing keys get their smallest failing part
	// computed (default 3; negative: none).
	Minimize int
}

// Check checks every key's history.
func (r *Recorder) Check(o CheckOptions) Report {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Minimize == 0 {
		o.Minimize = 3
	}
	var rep Report
	for _, k := range r.Keys() {
		ops := r.History(k)
		rep.Keys++
		rep.Ops += len(ops)
		for _, op := range ops {
			if op.Write && op.Outcome == Unknown {
				rep.Unknown++
			}
		}
		switch porcupine.CheckOperationsTimeout(registerModel, operations(ops), o.Timeout) {
		case porcupine.Ok:
			continue
		case porcupine.Unknown:
			rep.Undecided = append(rep.Undecided, k)
			continue
		}
		f := Failure{Key: k, Ops: len(ops)}
		if len(rep.Failures) < o.Minimize {
			f.Minimal = Minimize(ops, o.Timeout)
		}
		rep.Failures = append(rep.Failures, f)
	}
	return rep
}

// Linearizable reports whether ops, one key's history, is linearizable.
func Linearizable(ops []Op, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(registerModel, operations(ops), timeout)
}

// Minimize returns a smallest failing part of ops, a history that is not
// linearizable: operations are dropped one at a time, as long as what is
// left still fails, until dropping any one more would make it pass. A
// write stays as long as a read of its value does, so the part still shows
// where each value it reads came from.
func Minimize(ops []Op, timeout time.Duration) []Op {
	fails := func(h []Op) bool { return Linearizable(h, timeout) == porcupine.Illegal }
	if !fails(ops) {
		return nil
	}
	cur := ops
	for changed := true; changed; {
		changed = false
		for i := 0; i < len(cur); i++ {
			try := append(append([]Op(nil), cur[:i]...), cur[i+1:]...)
			if cur[i].Write && readOf(try, cur[i].Value) {
				continue
			}
			if fails(try) {
				cur, changed = try, true
				i--
			}
		}
	}
	return cur
}

// readOf reports whether ops hold a read that found v.
func readOf(ops []Op, v any) bool {
	for _, op := range ops {
		if !op.Write && op.Found && op.Value == v {
			return true
		}
	}
	return false
}

// Visualize writes porcupine's HTML view of key's history, with its
// partial linearizations when it is not linearizable, into dir and returns
// the file's path.
func (r *Recorder) Visualize(dir, key string, timeout time.Duration) (string, error) {
	_, info := porcupine.CheckOperationsVerbose(registerModel, operations(r.History(key)), timeout)
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ' ' || r < ' ' {
			return '_'
		}
		return r
	}, key)
	path := filepath.Join(dir, "history-"+name+".html")
	if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
		return "", fmt.Errorf("history: visualize %s: %w", key, err)
	}
	return path, nil
}
