package services

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/internal/promreg"
)

// cacheMetrics collects one cache's view; its counters are bumped by the
// cache, its gauges read from the cache's state at scrape time.
type cacheMetrics struct {
	c *Cache

	floor, instances, capMinor, finalized, age, refreshes, notices *prometheus.Desc

	refreshOK, refreshFailed, received atomic.Int64
}

func newCacheMetrics(c *Cache, reg prometheus.Registerer) (*cacheMetrics, error) {
	cl := prometheus.Labels{"cluster": c.Cluster()}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, cl)
	}
	m := &cacheMetrics{c: c,
		floor:     d("tandem_services_floor", "The release floor: the lowest release among instances that are not deleted (0 when none is registered)."),
		instances: d("tandem_services_instances", "Instances that are not deleted, by release and state (up, draining, error, missing).", "release", "state"),
		capMinor:  d("tandem_services_cap_minor", "Each API's cap, the lowest current version among its servers: the minor, per API and major.", "api", "major"),
		finalized: d("tandem_services_finalized_release", "The highest finalized release (0 when none): older releases may not register."),
		age:       d("tandem_services_cache_age_seconds", "How old the cache's registry snapshot is: its staleness."),
		refreshes: d("tandem_services_cache_refreshes_total", "Registry reads by the cache, by result (ok, error).", "result"),
		notices:   d("tandem_services_notifications_total", "Registry change notices the cache received on NATS."),
	}
	got, err := promreg.Register(reg, m)
	if err != nil {
		return nil, fmt.Errorf("services: cache metrics: %w", err)
	}
	return got, nil
}

func (m *cacheMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.floor, m.instances, m.capMinor, m.finalized, m.age, m.refreshes, m.notices} {
		ch <- d
	}
}

func (m *cacheMetrics) Collect(ch chan<- prometheus.Metric) {
	v, counts, takenAt := m.c.scrape()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(m.floor, float64(v.floor))
	for k, n := range counts {
		gauge(m.instances, float64(n), strconv.FormatInt(k.release, 10), string(k.state))
	}
	for api, v := range v.caps {
		gauge(m.capMinor, float64(v.Minor), api, strconv.Itoa(v.Major))
	}
	gauge(m.finalized, float64(v.finalized))
	if !takenAt.IsZero() {
		gauge(m.age, max(0, time.Since(takenAt).Seconds()))
	}
	ch <- prometheus.MustNewConstMetric(m.refreshes, prometheus.CounterValue, float64(m.refreshOK.Load()), "ok")
	ch <- prometheus.MustNewConstMetric(m.refreshes, prometheus.CounterValue, float64(m.refreshFailed.Load()), "error")
	ch <- prometheus.MustNewConstMetric(m.notices, prometheus.CounterValue, float64(m.received.Load()))
}

// refreshed counts one read of the source; m may be nil (no metrics).
func (m *cacheMetrics) refreshed(err error) {
	switch {
	case m == nil:
	case err != nil:
		m.refreshFailed.Add(1)
	default:
		m.refreshOK.Add(1)
	}
}

func (m *cacheMetrics) noticed() {
	if m != nil {
		m.received.Add(1)
	}
}

// releaseState keys the instances gauge.
type releaseState struct {
	release int64
	state   State
}

// scrape reads what the metrics show from the cache's state: one pass over
// its instances per scrape, never per change.
func (c *Cache) scrape() (*cacheView, map[releaseState]int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[releaseState]int{}
	for _, in := range c.st.byID {
		counts[releaseState{in.Release, in.State}]++
	}
	return c.view.Load(), counts, c.st.takenAt
}
