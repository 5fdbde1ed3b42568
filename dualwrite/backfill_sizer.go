package dualwrite

import "time"

// batchSizer adapts the rows per batch toward a target time per batch,
// like pt-online-schema-change's --chunk-time. It keeps a smoothed cost per
// row and sizes the next batch to take the target time at that cost.
//
// A batch over one and a half times the target is believed at once, so a
// stall (a checkpoint, a burst of other load) shrinks the next batch in
// proportion and does not repeat itself at full size; any other batch is
// averaged in, so neither one quick batch makes the next one long nor does
// ordinary jitter keep batches below the target, where each batch's fixed
// cost (its commit, the cursor) would weigh more. Growth is at most twice per batch, eight
// times while batches take under an eighth of the target: the first batch
// is small because nothing is known yet, and a backfill of a fast engine
// would otherwise spend much of its run ramping up. A short last batch says
// nothing about the rate and is not observed.
type batchSizer struct {
	target           time.Duration
	minRows, maxRows int
	perRow           float64 // seconds per row; 0 until the first batch
}

// observe records that a batch of rows took el and returns the next size.
func (s *batchSizer) observe(rows int, el time.Duration) int {
	if rows <= 0 || el <= 0 {
		return max(s.minRows, min(s.maxRows, rows))
	}
	r := el.Seconds() / float64(rows)
	switch {
	case s.perRow == 0, el > s.target*3/2 && r > s.perRow:
		s.perRow = r
	default:
		s.perRow = (s.perRow + r) / 2
	}
	growth := 2.0
	if el < s.target/8 {
		growth = 8
	}
	next := min(s.target.Seconds()/s.perRow, float64(rows)*growth)
	return max(s.minRows, min(s.maxRows, int(next)))
}
