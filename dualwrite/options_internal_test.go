package dualwrite

import "testing"

// TestBackfillDefaultsFitBounds: defaults follow explicit bounds, so the
// adaptive size always stays within [min, max].
func TestBackfillDefaultsFitBounds(t *testing.T) {
	for _, tc := range []struct {
		opts                []Option
		initial, minB, maxB int
	}{
		{nil, 1000, 100, 1_000_000},
		{[]Option{WithBatchSize(0, 0, 50)}, 50, 50, 50},
		{[]Option{WithBatchSize(50, 0, 0)}, 50, 50, 1_000_000},
		{[]Option{WithBatchSize(5_000_000, 0, 0)}, 5_000_000, 100, 5_000_000},
		{[]Option{WithBatchSize(0, 2000, 0)}, 2000, 2000, 1_000_000},
	} {
		c, err := newBackfillConfig(tc.opts)
		if err != nil || c.initial != tc.initial || c.minBatch != tc.minB || c.maxBatch != tc.maxB {
			t.Errorf("got initial %d, min %d, max %d (%v); want %d, %d, %d", c.initial, c.minBatch, c.maxBatch, err, tc.initial, tc.minB, tc.maxB)
		}
	}
}
