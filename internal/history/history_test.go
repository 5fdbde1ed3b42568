package history

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// ms builds operations on a millisecond clock.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func w(client int, v string, call, ret int, o Outcome) Op {
	return Op{Client: client, Write: true, Value: v, Found: true, Outcome: o, Call: ms(call), Return: ms(ret)}
}

func r(client int, v string, call, ret int) Op {
	if v == "" {
		return Op{Client: client, Call: ms(call), Return: ms(ret)}
	}
	return Op{Client: client, Value: v, Found: true, Call: ms(call), Return: ms(ret)}
}

// TestRegisterModel: each history, one key, linearizable or not, and the
// smallest failing part of those that are not.
func TestRegisterModel(t *testing.T) {
	tests := []struct {
		name    string
		ops     []Op
		ok      bool
		minimal []int // indexes into ops of the smallest failing part
	}{
		{"read after write", []Op{w(0, "a", 0, 10, Applied), r(1, "a", 20, 30)}, true, nil},
		{"nothing before the first write", []Op{r(1, "", 0, 5), w(0, "a", 10, 20, Applied), r(1, "a", 30, 40)}, true, nil},
		{"a concurrent read may see either", []Op{w(0, "a", 0, 10, Applied), w(0, "b", 20, 40, Applied), r(1, "a", 25, 30), r(1, "b", 35, 50)}, true, nil},
		{"stale read", []Op{w(0, "a", 0, 10, Applied), w(0, "b", 20, 30, Applied), r(1, "a", 40, 50)}, false, []int{0, 1, 2}},
		{"read goes back in time", []Op{w(0, "a", 0, 10, Applied), w(0, "b", 20, 60, Applied), r(1, "b", 25, 30), r(1, "a", 35, 40)}, false, []int{0, 1, 2, 3}},
		{"lost write", []Op{w(0, "a", 0, 10, Applied), r(1, "", 20, 30)}, false, []int{0, 1}},
		{"value nobody wrote", []Op{w(0, "a", 0, 10, Applied), r(1, "z", 20, 30)}, false, []int{1}},
		// A write whose outcome is unknown may land late...
		{"unknown outcome lands late", []Op{w(0, "a", 0, 10, Unknown), r(1, "", 20, 30), r(1, "a", 500, 510)}, true, nil},
		// ...or never.
		{"unknown outcome never lands", []Op{w(0, "a", 0, 10, Unknown), r(1, "", 500, 510)}, true, nil},
		// But once seen it cannot be unseen.
		{"unknown outcome seen then gone", []Op{w(0, "a", 0, 10, Unknown), r(1, "a", 20, 30), r(1, "", 40, 50)}, false, []int{0, 1, 2}},
		// A write of unknown outcome that lands after a newer
		// acknowledged one (a ghost) is allowed by the model: it is
		// counted apart, from the server's own record.
		{"unknown outcome lands after a newer write", []Op{w(0, "a", 0, 10, Unknown), w(0, "b", 20, 30, Applied), r(1, "a", 40, 50)}, true, nil},
		// A refused write never takes effect.
		{"refused write seen", []Op{w(0, "a", 0, 10, Applied), w(0, "b", 20, 30, Refused), r(1, "b", 40, 50)}, false, []int{1, 2}},
		{"refused write not seen", []Op{w(0, "a", 0, 10, Applied), w(0, "b", 20, 30, Refused), r(1, "a", 40, 50)}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Linearizable(tt.ops, 5*time.Second)
			if want := map[bool]porcupine.CheckResult{true: porcupine.Ok, false: porcupine.Illegal}[tt.ok]; got != want {
				t.Fatalf("%s, want %s: %v", got, want, tt.ops)
			}
			min := Minimize(tt.ops, 5*time.Second)
			if tt.ok {
				if min != nil {
					t.Fatalf("a linearizable history minimised to %v", min)
				}
				return
			}
			var want []Op
			for _, i := range tt.minimal {
				want = append(want, tt.ops[i])
			}
			if len(min) != len(want) {
				t.Fatalf("smallest failing part %v, want %v", min, want)
			}
			for i := range min {
				if min[i] != want[i] {
					t.Fatalf("smallest failing part %v, want %v", min, want)
				}
			}
			// 1-minimal: without any one of its operations (but a write
			// still read) it passes.
			for i := range min {
				rest := append(append([]Op(nil), min[:i]...), min[i+1:]...)
				if min[i].Write && readOf(rest, min[i].Value) {
					continue
				}
				if Linearizable(rest, 5*time.Second) != porcupine.Ok {
					t.Fatalf("%v still fails without %v", min, min[i])
				}
			}
		})
	}
}

// TestCheckReportsTheFailingKey: a recorder with one good and one bad key
// reports only the bad one, with its smallest failing part and an HTML
// view of it.
func TestCheckReportsTheFailingKey(t *testing.T) {
	rec := NewRecorder()
	t0 := rec.start
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	for i := range 20 {
		v := string(rune('a' + i))
		rec.Write(0, "good", v, at(10*i), at(10*i+3), Applied)
		rec.Read(1, "good", v, true, at(10*i+5), at(10*i+8))
		rec.Write(0, "bad", v, at(10*i), at(10*i+3), Applied)
		rec.Read(1, "bad", v, true, at(10*i+5), at(10*i+8))
	}
	rec.Write(2, "bad", "late", at(100), at(110), Unknown)
	// The stale read: c was overwritten by d at 33 at the latest.
	rec.Read(1, "bad", "c", true, at(40), at(41))
	dir := t.TempDir()
	rep := rec.Check(CheckOptions{})
	if rep.Keys != 2 || rep.Ops != 82 || rep.Unknown != 1 || rep.Linearizable() || len(rep.Failures) != 1 {
		t.Fatalf("report %+v", rep)
	}
	f := rep.Failures[0]
	var err error
	if f.Visualization, err = rec.Visualize(dir, f.Key, time.Second); err != nil {
		t.Fatal(err)
	}
	if f.Key != "bad" || f.Ops != 42 || len(f.Minimal) != 3 {
		t.Fatalf("failure %+v", f)
	}
	text := f.String()
	for _, want := range []string{"history of bad is not linearizable (42 operations)", "smallest failing part, 3 operations",
		"client 0 write c [0.020s, 0.023s] ok", "client 0 write d [0.030s, 0.033s] ok", "client 1 read -> c [0.040s, 0.041s]", f.Visualization} {
		if !strings.Contains(text, want) {
			t.Errorf("failure text lacks %q:\n%s", want, text)
		}
	}
	html, err := os.ReadFile(f.Visualization)
	if err != nil || !strings.Contains(string(html), `read -\u003e c`) {
		t.Fatalf("visualization %s: %v", f.Visualization, err)
	}
}

// Recording from many goroutines at once is safe (run with -race).
func TestRecorderConcurrent(t *testing.T) {
	rec := NewRecorder()
	done := make(chan struct{})
	for c := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				now := time.Now()
				rec.Write(c, "k", i, now, time.Now(), Applied)
			}
		}()
	}
	for range 4 {
		<-done
	}
	if n := len(rec.History("k")); n != 400 {
		t.Fatalf("%d operations recorded", n)
	}
}
