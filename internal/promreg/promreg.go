// Package promreg registers tandem's Prometheus collectors on the
// registerer an application passes in, sharing them between the values of
// one package that use the same registerer (two clients, a client and a
// server), so a second registration is no error.
package promreg

import (
	"errors"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or the collector already
// registered there under the same descriptors. Any other error (a metric
// of the same name with other labels) is returned: it is a programming
// error the application must see.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// Buckets for call latencies: 50µs to about 3s, doubling.
var LatencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)

// Buckets for backfill and verify batches: 1ms to about 16s, doubling.
var BatchBuckets = prometheus.ExponentialBuckets(1e-3, 2, 15)

// Value returns the value of the sample of metric name whose labels
// include every "name=value" pair given (a counter's, a gauge's, or a
// histogram's count), and whether there is one. Tests and `tandem serve`
// read gathered metrics with it.
func Value(g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, false
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for _, kv := range labels {
				k, v, _ := strings.Cut(kv, "=")
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			case m.Untyped != nil:
				return m.Untyped.GetValue(), true
			}
		}
	}
	return 0, false
}
