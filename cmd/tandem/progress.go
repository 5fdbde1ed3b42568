package main

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/tandem-go/tandem/dualwrite"
)

// plainEvery is how often progress is written as a line when stderr is
// not a terminal: often enough to show a long run is alive in a CI log,
// rarely enough not to flood it.
const plainEvery = 5 * time.Second

// isTerminal says whether w is a terminal (a character device such as
// /dev/null is not).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// progressPrinter renders the progress of a backfill or verify, and
// returns the function that ends it (call it when the run returns, however
// it ended). With --json each event is a JSON line on stdout (ev). Otherwise
// progress goes to stderr, so stdout keeps only the result: on a terminal,
// a bar redrawn in place (rate, ETA, a few frames a second, the last frame
// showing the totals); when stderr is not a terminal, a line every
// plainEvery and none at the end (the result says it). With -v the log
// has a line per batch instead, so neither is drawn.
func (a *app) progressPrinter(ev *eventWriter) (show func(dualwrite.Progress), done func()) {
	if ev != nil {
		return ev.progress, func() {}
	}
	if a.verbose {
		return func(dualwrite.Progress) {}, func() {}
	}
	v := &progressMeter{w: a.stderr, tty: isTerminal(a.stderr), every: plainEvery, now: time.Now}
	return v.show, v.close
}

// progressMeter draws one run's progress events.
type progressMeter struct {
	w     io.Writer
	tty   bool
	every time.Duration
	now   func() time.Time

	barOpts []mpb.ContainerOption // tests draw on a buffer (mpb.WithAutoRefresh)

	started  bool
	start    int64 // rows done before this run (a resumed backfill)
	bar      *barView
	lastLine time.Time
}

func (v *progressMeter) show(p dualwrite.Progress) {
	if !v.started {
		v.started = true
		v.start = max(p.Done-int64(p.BatchRows), 0)
		if p.Finished {
			v.start = p.Done
		}
	}
	if v.tty {
		v.draw(p)
		return
	}
	if p.Finished {
		return // the command prints the result on stdout
	}
	if now := v.now(); v.lastLine.IsZero() || now.Sub(v.lastLine) >= v.every {
		v.lastLine = now
		fmt.Fprintln(v.w, plainLine(p))
	}
}

// plainLine is one progress line for a log.
func plainLine(p dualwrite.Progress) string {
	s := fmt.Sprintf("%s %s: %s rows", p.Op, p.Move, humanize.Comma(p.Done))
	if p.Total > 0 {
		s = fmt.Sprintf("%s %s: %.1f%%, %s of %s rows", p.Op, p.Move, p.Percent(), humanize.Comma(p.Done), humanize.Comma(p.Total))
	}
	if p.RowsPerS > 0 {
		s += fmt.Sprintf(", %s rows/s", humanize.Comma(int64(p.RowsPerS)))
		if left := p.Total - p.Done; p.Total > 0 && left > 0 {
			s += ", about " + (time.Duration(float64(left) / p.RowsPerS * float64(time.Second))).Round(time.Second).String() + " left"
		}
	}
	if p.BatchRows > 0 {
		s += fmt.Sprintf(" (batch %d: %s rows in %s)", p.Batch, humanize.Comma(int64(p.BatchRows)), p.BatchTime.Round(time.Millisecond))
	}
	return s
}

// barView draws the bar of one run on a terminal with mpb, which redraws it
// at most every barRefresh and, once the run finishes, draws one last frame
// and ends the line, so nothing of a frame is left behind. The figures
// beside the bar are the run's own (dualwrite.Progress): its rate is this
// run's rows over its wall time, --rate pauses included, so the ETA holds
// for a resumed or rate-limited run too.
type barView struct {
	p     *mpb.Progress
	bar   *mpb.Bar
	state atomic.Pointer[barState]
}

// barState is what the decorators show; the render goroutine reads it.
type barState struct {
	label       string
	done, total int64
	rate        float64
	final       bool
}

// barRefresh is the redraw interval: smooth to the eye, cheap to draw.
const barRefresh = 150 * time.Millisecond

func newBar(w io.Writer, total int64, st barState, opts ...mpb.ContainerOption) *barView {
	b := &barView{p: mpb.New(append([]mpb.ContainerOption{mpb.WithOutput(w), mpb.WithRefreshRate(barRefresh)}, opts...)...)}
	b.state.Store(&st)
	// A total of 0 leaves the bar running until finish forces it complete
	// (a bar given a total completes when the count reaches it, before the
	// last frame has its totals); SetTotal(_, false) sets what it shows.
	b.bar = b.p.AddBar(0, mpb.BarFillerClearOnComplete(),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return b.state.Load().label }, decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return b.state.Load().figures() }, decor.WCSyncSpace)),
	)
	b.bar.SetTotal(total, false)
	return b
}

// figures is the text after the bar: percent, counts, rate and ETA.
func (st *barState) figures() string {
	if st.final {
		return ""
	}
	s := humanize.Comma(st.done) + " rows"
	if st.total > 0 {
		s = fmt.Sprintf("%.1f%% %s/%s rows", min(100, 100*float64(st.done)/float64(st.total)), humanize.Comma(st.done), humanize.Comma(st.total))
	}
	if st.rate > 0 {
		s += ", " + humanize.Comma(int64(st.rate)) + " rows/s"
		if left := st.total - st.done; st.total > 0 && left > 0 {
			s += ", ETA " + (time.Duration(float64(left) / st.rate * float64(time.Second))).Round(time.Second).String()
		}
	}
	return s
}

// set shows p, a batch of the run.
func (b *barView) set(p dualwrite.Progress) {
	st := *b.state.Load()
	st.done, st.total, st.rate = p.Done, p.Total, p.RowsPerS
	b.state.Store(&st)
	if p.Total > 0 {
		b.bar.SetTotal(max(p.Total, p.Done), false)
	}
	b.bar.SetCurrent(p.Done)
}

// finish draws the last frame with label and ends the bar.
func (b *barView) finish(label string) {
	b.state.Store(&barState{label: label, final: true})
	b.bar.SetTotal(-1, true)
	b.p.Wait()
}

// abort ends a bar whose run stopped before it finished, keeping its
// last frame.
func (b *barView) abort() {
	if !b.bar.Completed() {
		b.bar.Abort(false)
	}
	b.p.Wait()
}

// draw updates the bar: what the run did so far; the last frame says the
// totals.
func (v *progressMeter) draw(p dualwrite.Progress) {
	if v.bar == nil {
		if p.Finished && p.Done == v.start {
			return // nothing ran: the result says so
		}
		label := p.Op + " " + p.Move
		if v.start > 0 {
			label += fmt.Sprintf(" (resumed at %s)", humanize.Comma(v.start))
		}
		v.bar = newBar(v.w, max(p.Total, p.Done, 1), barState{label: label}, v.barOpts...)
	}
	if p.Finished {
		v.bar.finish(v.summary(p))
		v.bar = nil
		return
	}
	v.bar.set(p)
}

// close ends a bar left drawing by a run that stopped early.
func (v *progressMeter) close() {
	if v.bar != nil {
		v.bar.abort()
		v.bar = nil
	}
}

// summary is the last frame's text: the totals of the run.
func (v *progressMeter) summary(p dualwrite.Progress) string {
	s := fmt.Sprintf("%s %s: done, %s rows", p.Op, p.Move, humanize.Comma(p.Done))
	if p.Total > 0 {
		s = fmt.Sprintf("%s %s: done, %s of %s rows", p.Op, p.Move, humanize.Comma(p.Done), humanize.Comma(p.Total))
	}
	if v.start > 0 {
		s += fmt.Sprintf(" (%s this run, resumed at %s)", humanize.Comma(p.Done-v.start), humanize.Comma(v.start))
	}
	if p.Failed > 0 {
		s += fmt.Sprintf(", %s failed", humanize.Comma(p.Failed))
	}
	if p.Elapsed > 0 {
		s += fmt.Sprintf(", %s rows/s in %s", humanize.Comma(int64(p.RowsPerS)), p.Elapsed.Round(time.Millisecond))
	}
	return s
}
