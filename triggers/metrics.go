package triggers

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/dialect"
)

// ScrapeTimeout bounds the catalog reads of one scrape of a Collector.
const ScrapeTimeout = 10 * time.Second

// Collector reports, when scraped, whether each set's objects are in the
// database as generated (a Check per set): tandem_triggers_present (every
// generated object exists), tandem_triggers_unchanged (none differs from
// what is generated and no stale one is left) and tandem_triggers_objects
// by state. Register it on the application's registry:
//
//	reg.MustRegister(triggers.NewCollector(db, set))
type Collector struct {
	q    dialect.Querier
	sets []Set

	present, unchanged, objects, up *prometheus.Desc
}

// NewCollector returns a collector of sets' objects as q's database holds them.
func NewCollector(q dialect.Querier, sets ...Set) *Collector {
	return &Collector{q: q, sets: sets,
		present:   prometheus.NewDesc("tandem_triggers_present", "1 when every sync trigger object generated for the move exists in the database.", []string{"move"}, nil),
		unchanged: prometheus.NewDesc("tandem_triggers_unchanged", "1 when no sync trigger object of the move differs from what is generated and none stale is left.", []string{"move"}, nil),
		objects:   prometheus.NewDesc("tandem_triggers_objects", "The move's sync trigger objects by state: ok, missing, changed, unexpected.", []string{"move", "state"}, nil),
		up:        prometheus.NewDesc("tandem_triggers_check_up", "1 when the last scrape read the catalog of every move's triggers, 0 when one failed.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.present, c.unchanged, c.objects, c.up} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it only reads.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), ScrapeTimeout)
	defer cancel()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := 1.0
	for _, set := range c.sets {
		rep, err := Check(ctx, c.q, set)
		if err != nil && !errors.Is(err, ErrDrift) {
			up = 0
			continue
		}
		counts := map[State]int{StateOK: 0, StateMissing: 0, StateChanged: 0, StateUnexpected: 0}
		for _, o := range rep.Objects {
			counts[o.State]++
		}
		for st, n := range counts {
			gauge(c.objects, float64(n), set.Move, string(st))
		}
		gauge(c.present, bool01(counts[StateMissing] == 0), set.Move)
		gauge(c.unchanged, bool01(counts[StateChanged] == 0 && counts[StateUnexpected] == 0), set.Move)
	}
	gauge(c.up, up)
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
