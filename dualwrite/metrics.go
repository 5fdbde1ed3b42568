package dualwrite

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/internal/promreg"
	"github.com/tandem-go/tandem/move"
)

// A phase as a gauge's value: legacy 0, write-both 1, read-new 2,
// write-new 3, contracted 4.

// ScrapeTimeout bounds the ledger and registry reads of one scrape of a
// Manager's metrics.
const ScrapeTimeout = 10 * time.Second

// ledgerCollector reports Status when scraped.
type ledgerCollector struct {
	mg *Manager

	phase, gateOpen, blockers, rowsDone, rowsTotal, failed, mismatches, up *prometheus.Desc
	frozen, unacked                                                        *prometheus.Desc
}

// runMetrics are what this process's backfills and verifies did.
type runMetrics struct {
	batchSecs *prometheus.HistogramVec
	rows      *prometheus.CounterVec
	rate      *prometheus.GaugeVec
}

func (mg *Manager) startMetrics() error {
	reg := mg.metricsReg
	if reg == nil {
		return nil
	}
	d := prometheus.NewDesc
	lc := &ledgerCollector{mg: mg,
		phase:      d("tandem_dualwrite_phase", "Each move's phase in the ledger: legacy 0, write-both 1, read-new 2, write-new 3, contracted 4.", []string{"move"}, nil),
		gateOpen:   d("tandem_dualwrite_gate_open", "1 when the move's next transition is open, 0 when it is blocked; absent once contracted.", []string{"move", "to"}, nil),
		blockers:   d("tandem_dualwrite_blockers", "What blocks each move now (its next gate and its problems), by kind.", []string{"move", "kind"}, nil),
		rowsDone:   d("tandem_dualwrite_backfill_rows_done", "Rows the move's backfill has done, by direction (backfill, reverse-backfill).", []string{"move", "direction"}, nil),
		rowsTotal:  d("tandem_dualwrite_backfill_rows_total", "Rows the move's backfill has to do, by direction.", []string{"move", "direction"}, nil),
		failed:     d("tandem_dualwrite_failed_rows", "Rows whose transform failed, recorded in the ledger.", []string{"move"}, nil),
		mismatches: d("tandem_dualwrite_verify_mismatches", "Rows where new differs from transform(old) at the last verify; absent until one ran.", []string{"move"}, nil),
		up:         d("tandem_dualwrite_ledger_up", "1 when the last scrape read the ledger and the registry, 0 when it failed.", nil, nil),
		frozen:     d("tandem_dualwrite_writes_frozen", "1 when the operator froze writes on the move (tandem freeze), 0 otherwise.", []string{"move"}, nil),
		unacked:    d("tandem_dualwrite_freeze_unacknowledged", "Instances (not deleted) that have not acknowledged the write freeze or thaw in force.", nil, nil),
	}
	if _, err := promreg.Register(reg, lc); err != nil {
		return fmt.Errorf("dualwrite: metrics: %w", err)
	}
	rm := &runMetrics{
		batchSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_dualwrite_batch_seconds",
			Help: "Duration of each backfill batch (its own transaction) run by this process, by move and op.", Buckets: promreg.BatchBuckets}, []string{"move", "op"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_dualwrite_backfill_rows_processed_total",
			Help: "Rows this process's backfill batches moved, by move and op."}, []string{"move", "op"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tandem_dualwrite_backfill_rows_per_second",
			Help: "Rows per second of this process's latest backfill run of the move, updated after each batch."}, []string{"move", "op"}),
	}
	var err error
	if rm.batchSecs, err = promreg.Register(reg, rm.batchSecs); err != nil {
		return fmt.Errorf("dualwrite: metrics: %w", err)
	}
	if rm.rows, err = promreg.Register(reg, rm.rows); err != nil {
		return fmt.Errorf("dualwrite: metrics: %w", err)
	}
	if rm.rate, err = promreg.Register(reg, rm.rate); err != nil {
		return fmt.Errorf("dualwrite: metrics: %w", err)
	}
	mg.met = rm
	return nil
}

// batch records one backfill batch; m may be nil.
func (m *runMetrics) batch(name, op string, rows int, took time.Duration, rowsPerS float64) {
	if m == nil {
		return
	}
	m.batchSecs.WithLabelValues(name, op).Observe(took.Seconds())
	m.rows.WithLabelValues(name, op).Add(float64(rows))
	m.rate.WithLabelValues(name, op).Set(rowsPerS)
}

func (c *ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.phase, c.gateOpen, c.blockers, c.rowsDone, c.rowsTotal, c.failed, c.mismatches, c.up, c.frozen, c.unacked} {
		ch <- d
	}
}

func (c *ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	st, err := c.mg.Status(ctx)
	var fs FreezeStatus
	if err == nil {
		fs, err = c.mg.FreezeStatus(ctx)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if err != nil {
		gauge(c.up, 0)
		c.mg.log.Warn("dualwrite: metrics: status", "err", err)
		return
	}
	gauge(c.up, 1)
	if c.mg.src != nil {
		gauge(c.unacked, float64(len(fs.Pending)))
	}
	for _, m := range st.Moves {
		gauge(c.phase, float64(m.Phase), m.Name)
		frozen := 0.0
		if fs.Covers(m.Name) {
			frozen = 1
		}
		gauge(c.frozen, frozen, m.Name)
		kinds := map[BlockKind]int{}
		for _, b := range m.Problems {
			kinds[b.Kind]++
		}
		if m.Next != nil {
			open := 0.0
			if m.Next.Open {
				open = 1
			}
			gauge(c.gateOpen, open, m.Name, m.Next.To.String())
			for _, b := range m.Next.Blockers {
				kinds[b.Kind]++
			}
		}
		for k, n := range kinds {
			gauge(c.blockers, float64(n), m.Name, string(k))
		}
		gauge(c.rowsDone, float64(m.Backfill.RowsDone), m.Name, OpBackfill)
		gauge(c.rowsTotal, float64(m.Backfill.RowsTotal), m.Name, OpBackfill)
		if r := m.Reverse; r != nil && m.Phase != move.Contracted {
			gauge(c.rowsDone, float64(r.RowsDone), m.Name, OpReverseBackfill)
			gauge(c.rowsTotal, float64(r.RowsTotal), m.Name, OpReverseBackfill)
		}
		gauge(c.failed, float64(m.FailedRows), m.Name)
		if m.Mismatches != nil {
			gauge(c.mismatches, float64(*m.Mismatches), m.Name)
		}
	}
}

// trackerCollector reports the phase the instance acts on per move.
type trackerCollector struct {
	t                    *Tracker
	desc, acked, refused *prometheus.Desc
}

func (t *Tracker) startMetrics() error {
	if t.metricsReg == nil {
		return nil
	}
	tc := &trackerCollector{t: t, desc: prometheus.NewDesc("tandem_dualwrite_acting_phase",
		"The phase this instance acts on per move (legacy 0 to contracted 4): min(ledger, what its build carries), held while older operations run.", []string{"move"}, nil),
		acked: prometheus.NewDesc("tandem_dualwrite_freeze_acknowledged",
			"The write freeze state (its seq) this instance acknowledges with its heartbeats; 0 before any freeze.", nil, nil),
		refused: prometheus.NewDesc("tandem_dualwrite_writes_refused_total",
			"Writes BeginWrite refused because writes on the move were frozen (other: names that are no move of this tracker).", []string{"move"}, nil)}
	if _, err := promreg.Register(t.metricsReg, tc); err != nil {
		return fmt.Errorf("dualwrite: tracker metrics: %w", err)
	}
	return nil
}

func (c *trackerCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.acked
	ch <- c.refused
}

func (c *trackerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.t.moves {
		s := c.t.state[m.Name]
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(s.reported()), m.Name)
		ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(s.refused.Load()), m.Name)
	}
	ch <- prometheus.MustNewConstMetric(c.refused, prometheus.CounterValue, float64(c.t.otherRefused.Load()), "other")
	ch <- prometheus.MustNewConstMetric(c.acked, prometheus.GaugeValue, float64(c.t.FreezeAck()))
}
