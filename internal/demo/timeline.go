package demo

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// timeline prints one line per event, stamped with the time since start.
type timeline struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (t *timeline) since() time.Duration { return time.Since(t.start) }

// at is when, on the timeline, tm was.
func (t *timeline) at(tm time.Time) time.Duration { return tm.Sub(t.start) }

func (t *timeline) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%7.2fs  %s\n", t.since().Seconds(), msg)
}
