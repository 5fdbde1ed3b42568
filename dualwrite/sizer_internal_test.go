package dualwrite

import (
	"testing"
	"time"
)

func TestBatchSizer(t *testing.T) {
	const target = 100 * time.Millisecond
	ms := func(f float64) time.Duration { return time.Duration(f * float64(time.Millisecond)) }
	type step struct {
		rows int
		took time.Duration
		want int
	}
	cases := []struct {
		name  string
		min   int
		max   int
		steps []step
	}{
		{"ramps up eight times while far below the target", 100, 1_000_000, []step{
			{1000, ms(1), 8000}, {8000, ms(8), 64000},
		}},
		{"grows at most twice near the target", 100, 1_000_000, []step{
			{10000, ms(20), 20000},
		}},
		{"settles on the target", 100, 1_000_000, []step{
			{10000, ms(100), 10000}, {10000, ms(100), 10000},
		}},
		{"a slow batch shrinks the next in proportion", 100, 1_000_000, []step{
			{10000, ms(100), 10000}, {10000, ms(400), 2500},
		}},
		{"a fast batch is averaged in", 100, 1_000_000, []step{
			// 10µs a row, then 5µs: the estimate becomes 7.5µs.
			{10000, ms(100), 10000}, {10000, ms(50), 13333},
		}},
		{"a somewhat slow batch is averaged in too", 100, 1_000_000, []step{
			// 10µs a row, then 13µs (130ms, under 150): 11.5µs.
			{10000, ms(100), 10000}, {10000, ms(130), 8695},
		}},
		{"a slow estimate is kept until batches prove faster", 100, 1_000_000, []step{
			{10000, ms(400), 2500}, {2500, ms(25), 4000}, {4000, ms(40), 5714},
		}},
		{"bounds hold", 500, 20000, []step{
			{1000, ms(1), 8000}, {8000, ms(2), 20000}, {20000, ms(10000), 500},
		}},
		{"a zero duration changes nothing", 100, 1_000_000, []step{
			{3000, 0, 3000},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &batchSizer{target: target, minRows: c.min, maxRows: c.max}
			for i, st := range c.steps {
				if got := s.observe(st.rows, st.took); got != st.want {
					t.Fatalf("step %d: %d rows in %s: next size %d, want %d", i, st.rows, st.took, got, st.want)
				}
			}
		})
	}
}
