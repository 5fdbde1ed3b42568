package dualwrite

// BatchPercentiles exposes the backfill's batch-time percentiles to the
// benchmark, which pools the batches of several runs.
var BatchPercentiles = percentiles
