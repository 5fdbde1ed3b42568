package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/tandem-go/tandem/dualwrite"
)

// events is a run of ten batches of 1,000 rows, each taking 10ms, then the
// end.
func events(start int64) []dualwrite.Progress {
	var evs []dualwrite.Progress
	for i := 1; i <= 10; i++ {
		done := start + int64(i)*1000
		evs = append(evs, dualwrite.Progress{Move: "price_cents", Op: "backfill", Batch: i, BatchRows: 1000, BatchSize: 1000,
			BatchTime: 10 * time.Millisecond, Done: done, Total: start + 10000, Elapsed: time.Duration(i) * 10 * time.Millisecond,
			RowsPerS: 100000})
	}
	return append(evs, dualwrite.Progress{Move: "price_cents", Op: "backfill", Batch: 10, Done: start + 10000, Total: start + 10000,
		Elapsed: 100 * time.Millisecond, RowsPerS: 100000, Finished: true})
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]")

// lastFrame is what a terminal shows last: the text after the last
// carriage return or cursor move.
func lastFrame(out string) string {
	out = ansi.ReplaceAllString(out, "\r")
	lines := strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' })
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}

func TestProgressBarOnATerminal(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start int64
		want  []string
	}{
		{"fresh", 0, []string{"backfill price_cents: done, 10,000 of 10,000 rows, 100,000 rows/s in 100ms"}},
		{"resumed", 5000, []string{"done, 15,000 of 15,000 rows (10,000 this run, resumed at 5,000)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			v := &progressMeter{w: &buf, tty: true, now: time.Now, barOpts: []mpb.ContainerOption{mpb.WithAutoRefresh(), mpb.WithWidth(120)}}
			for _, p := range events(tc.start) {
				v.show(p)
			}
			v.close()
			out := buf.String()
			last := lastFrame(out)
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("last frame %q does not say %q\nall output: %q", last, w, out)
				}
			}
			if strings.Contains(last, "batch 0") || strings.Contains(last, "ETA") {
				t.Errorf("last frame %q shows a batch or an ETA", last)
			}
			if !strings.HasSuffix(out, "\n") {
				t.Errorf("the bar does not end its line: %q", out)
			}
		})
	}
}

func TestProgressLinesWithoutATerminal(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Each batch is 2s apart: with a line every 5s, batches 1, 4, 7 and 10
	// print one; the end prints none (the result says it).
	v := &progressMeter{w: &buf, every: 5 * time.Second, now: func() time.Time { return now }}
	for _, p := range events(0) {
		v.show(p)
		now = now.Add(2 * time.Second)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "backfill price_cents: 10.0%, 1,000 of 10,000 rows, 100,000 rows/s") ||
		strings.ContainsAny(buf.String(), "\r\x1b") {
		t.Fatalf("plain progress:\n%s", buf.String())
	}
}
