package rpcver

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-go/tandem/internal/promreg"
)

// Metrics are off unless an application passes a registerer: WithMetrics
// for a server and a client alike. Every label has few values:
// API and method names are the API's own, a version is one of the few an
// API accepts, an outcome or refusal kind is one of the constants below.
// Clients and servers sharing a registerer share the collectors.

// Call outcomes (label "outcome").
const (
	OutcomeOK                 = "ok"
	OutcomeRefused            = "refused"             // not sent: method too new, cannot backport
	OutcomeUnsupportedVersion = "unsupported_version" // the server did not accept the version
	OutcomeNoServer           = "no_server"
	OutcomeDisconnected       = "disconnected"
	OutcomeTimeout            = "timeout"
	OutcomeRemoteError        = "remote_error" // any other error answer of the server
	OutcomeError              = "error"        // anything else (encode, decode, cancelled)
)

// Refusal kinds (label "kind").
const (
	RefusalCannotBackport     = "cannot_backport"
	RefusalMethodTooNew       = "method_too_new"
	RefusalUnsupportedVersion = "unsupported_version"
)

// sharedMetrics are the collectors of one registerer.
type sharedMetrics struct {
	calls     *prometheus.CounterVec
	callSecs  *prometheus.HistogramVec
	served    *prometheus.CounterVec
	serveSecs *prometheus.HistogramVec
	backports *prometheus.CounterVec
	upgrades  *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	targets   *targetCollector
}

func newSharedMetrics(reg prometheus.Registerer) (*sharedMetrics, error) {
	m := &sharedMetrics{}
	var errs []error
	counter := func(dst **prometheus.CounterVec, name, help string, labels ...string) {
		c, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
		*dst = c
		errs = append(errs, err)
	}
	hist := func(dst **prometheus.HistogramVec, name, help string) {
		h, err := promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: promreg.LatencyBuckets}, []string{"api", "method"}))
		*dst = h
		errs = append(errs, err)
	}
	counter(&m.calls, "tandem_rpcver_client_calls_total", "Calls made by rpcver clients, by API, method, version sent and outcome.", "api", "method", "version", "outcome")
	hist(&m.callSecs, "tandem_rpcver_client_call_seconds", "Latency of rpcver client calls, from the call to its answer, retry included.")
	counter(&m.served, "tandem_rpcver_server_requests_total", "Requests answered by rpcver servers, by API, method, version requested and outcome (ok or the error code).", "api", "method", "version", "outcome")
	hist(&m.serveSecs, "tandem_rpcver_server_request_seconds", "Latency of rpcver server requests, from arrival at the server to the answer sent.")
	counter(&m.backports, "tandem_rpcver_backports_total", "Messages backported to an older version: requests by clients (side=client), responses by servers (side=server).", "api", "side")
	counter(&m.upgrades, "tandem_rpcver_upgrades_total", "Messages upgraded from an older version: requests by servers (side=server), responses by clients (side=client).", "api", "side")
	counter(&m.refusals, "tandem_rpcver_refusals_total", "Calls refused because of versions, by kind: cannot_backport, method_too_new, unsupported_version.", "api", "side", "kind")
	tc, err := promreg.Register(reg, &targetCollector{desc: prometheus.NewDesc("tandem_rpcver_cap_minor",
		"The minor version rpcver clients send at now, min(own current, cluster cap), per API and major.", []string{"api", "major"}, nil),
		clients: map[*Client]struct{}{}})
	m.targets = tc
	errs = append(errs, err)
	return m, errors.Join(errs...)
}

// targetCollector reports each API's version in force for the clients
// registered on it, read at scrape time (an atomic load per client).
type targetCollector struct {
	desc    *prometheus.Desc
	mu      sync.Mutex
	clients map[*Client]struct{}
}

func (t *targetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- t.desc }

func (t *targetCollector) Collect(ch chan<- prometheus.Metric) {
	t.mu.Lock()
	defer t.mu.Unlock()
	type key struct {
		api   string
		major int
	}
	low := map[key]int{}
	for c := range t.clients {
		v := c.Target()
		k := key{c.api.name, v.Major}
		if cur, ok := low[k]; !ok || v.Minor < cur {
			low[k] = v.Minor
		}
	}
	for k, minor := range low {
		ch <- prometheus.MustNewConstMetric(t.desc, prometheus.GaugeValue, float64(minor), k.api, strconv.Itoa(k.major))
	}
}

func (t *targetCollector) add(c *Client) {
	t.mu.Lock()
	t.clients[c] = struct{}{}
	t.mu.Unlock()
}

func (t *targetCollector) remove(c *Client) {
	t.mu.Lock()
	delete(t.clients, c)
	t.mu.Unlock()
}

// clientMetrics is one client's view of the shared collectors, with the
// children resolved ahead so a call does no label lookup.
type clientMetrics struct {
	shared    *sharedMetrics
	api       string
	backports prometheus.Counter
	upgrades  prometheus.Counter
}

func newClientMetrics(reg prometheus.Registerer, api *API) (*clientMetrics, error) {
	sm, err := newSharedMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &clientMetrics{shared: sm, api: api.name,
		backports: sm.backports.WithLabelValues(api.name, "client"), upgrades: sm.upgrades.WithLabelValues(api.name, "client")}, nil
}

// outcomes indexes outcomeCounters.
var outcomes = [...]string{OutcomeOK, OutcomeRefused, OutcomeUnsupportedVersion, OutcomeNoServer, OutcomeDisconnected, OutcomeTimeout, OutcomeRemoteError, OutcomeError}

const (
	iOK = iota
	iRefused
	iUnsupported
	iNoServer
	iDisconnected
	iTimeout
	iRemote
	iError
)

// outcomeCounters holds one method's call counters at one version, by
// outcome; a subjectAt carries them, so they are resolved once per target.
type outcomeCounters [len(outcomes)]prometheus.Counter

func (m *clientMetrics) counters(method string, v Version) *outcomeCounters {
	var oc outcomeCounters
	for i, o := range outcomes {
		oc[i] = m.shared.calls.WithLabelValues(m.api, method, v.String(), o)
	}
	return &oc
}

// called records one call: its outcome at the version last sent, and its
// latency.
func (m *clientMetrics) called(cm *clientMethod, sa *subjectAt, err error, took time.Duration) {
	cm.latency.Observe(took.Seconds())
	o := iOK
	if err != nil {
		o = callOutcome(err)
		switch k := refusalKind(err); k {
		case "":
		case RefusalUnsupportedVersion:
			// counted as each answer came, in refusedByServer
		default:
			m.shared.refusals.WithLabelValues(m.api, "client", k).Inc()
		}
	}
	sa.counts[o].Inc()
}

func (m *clientMetrics) refusedByServer() {
	m.shared.refusals.WithLabelValues(m.api, "client", RefusalUnsupportedVersion).Inc()
}

func callOutcome(err error) int {
	var (
		tooNew  *MethodTooNewError
		cannot  *CannotBackportError
		uv      *UnsupportedVersionError
		noSrv   *NoServerError
		disc    *DisconnectedError
		remote  *RemoteError
		timeout = errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
	)
	switch {
	case errors.As(err, &tooNew), errors.As(err, &cannot):
		return iRefused
	case errors.As(err, &uv):
		return iUnsupported
	case errors.As(err, &noSrv):
		return iNoServer
	case errors.As(err, &disc):
		return iDisconnected
	case timeout:
		return iTimeout
	case errors.As(err, &remote):
		return iRemote
	}
	return iError
}

func refusalKind(err error) string {
	var (
		tooNew *MethodTooNewError
		cannot *CannotBackportError
		uv     *UnsupportedVersionError
	)
	switch {
	case errors.As(err, &tooNew):
		return RefusalMethodTooNew
	case errors.As(err, &cannot):
		return RefusalCannotBackport
	case errors.As(err, &uv):
		return RefusalUnsupportedVersion
	}
	return ""
}

// serverMetrics is one server's view of the shared collectors.
type serverMetrics struct {
	shared    *sharedMetrics
	api       string
	backports prometheus.Counter
	upgrades  prometheus.Counter
	methods   map[string]*methodMetrics // read-only after NewServer
}

// methodMetrics holds one method's children, resolved ahead: its latency
// and its success counter at each version the server accepts.
type methodMetrics struct {
	latency prometheus.Observer
	oldest  Version
	ok      []prometheus.Counter // by minor - oldest.Minor
}

func newServerMetrics(reg prometheus.Registerer, api *API) (*serverMetrics, error) {
	sm, err := newSharedMetrics(reg)
	if err != nil {
		return nil, err
	}
	m := &serverMetrics{shared: sm, api: api.name, methods: map[string]*methodMetrics{},
		backports: sm.backports.WithLabelValues(api.name, "server"), upgrades: sm.upgrades.WithLabelValues(api.name, "server")}
	for name := range api.methods {
		mm := &methodMetrics{latency: sm.serveSecs.WithLabelValues(api.name, name), oldest: api.oldest}
		for minor := api.oldest.Minor; api.oldest.Major == api.current.Major && minor <= api.current.Minor; minor++ {
			v := Version{Major: api.current.Major, Minor: minor}
			mm.ok = append(mm.ok, sm.served.WithLabelValues(api.name, name, v.String(), OutcomeOK))
		}
		m.methods[name] = mm
	}
	return m, nil
}

// method returns the children of a method the API has (nil otherwise).
func (m *serverMetrics) method(name string) *methodMetrics { return m.methods[name] }

// served records one answered request of the method; code is "" for
// success. v is the zero Version when the subject named none that could be
// read.
func (m *serverMetrics) served(mm *methodMetrics, method string, v Version, code string, arrived time.Time) {
	mm.latency.Observe(time.Since(arrived).Seconds())
	if code == "" {
		if i := v.Minor - mm.oldest.Minor; v.Major == mm.oldest.Major && i >= 0 && i < len(mm.ok) {
			mm.ok[i].Inc()
			return
		}
		m.shared.served.WithLabelValues(m.api, method, v.String(), OutcomeOK).Inc()
		return
	}
	ver := v.String()
	switch code {
	case CodeUnsupportedVersion:
		// Any version can be asked for: keep the label bounded.
		ver = "other"
		m.shared.refusals.WithLabelValues(m.api, "server", RefusalUnsupportedVersion).Inc()
	case CodeCannotBackport:
		m.shared.refusals.WithLabelValues(m.api, "server", RefusalCannotBackport).Inc()
	case CodeBadRequest:
		if v == (Version{}) {
			ver = "other"
		}
	}
	m.shared.served.WithLabelValues(m.api, method, ver, serverOutcome(code)).Inc()
}

// serverOutcome keeps the label to tandem's codes: a handler's own
// StatusError codes count as "handler_error".
func serverOutcome(code string) string {
	switch code {
	case CodeBadRequest, CodeNotFound, CodeConflict, CodeCannotBackport, CodeFrozen, CodeInternal, CodeUnavailable, CodeDeadlineExceeded, CodeUnsupportedVersion:
		return code
	}
	return "handler_error"
}
