package rpcver

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Discovery metadata: what `nats micro info` and `nats micro stats` show of
// a server, so that a micro row can be matched to `tandem services list`.
//
// micro takes a service's metadata once, in the Config given to
// AddService, and offers no way to change it; only the STATS handler's
// per-endpoint data is computed per request. The instance's id, host,
// release and incarnation are fixed for the process, but the phases it
// acts on change during a rollout, and they belong with the identity in
// the metadata (shown by $SRV.PING, $SRV.INFO and $SRV.STATS alike), not
// repeated in every endpoint's figures. So when a heartbeat reports other
// phases, the server adds its micro service again with the new metadata,
// and only once the new endpoints are subscribed (the same queue groups,
// so requests keep flowing) stops the old service, which drains: no
// request is lost. Phases change a few times per rollout, so the costs
// are rare: the service's micro id changes and micro's own counters
// restart (the workers' QueueStats do not).

// Metadata keys of a server's micro service, besides the API's.
const (
	MetaInstance    = "tandem.instance"    // the registered instance id (WithRegistry)
	MetaService     = "tandem.service"     // its service name
	MetaHost        = "tandem.host"        // its host, as registered
	MetaRelease     = "tandem.release"     // its release
	MetaIncarnation = "tandem.incarnation" // the incarnation this process registered
	// MetaPhasePrefix + move is the phase the instance acts on for move,
	// as its last heartbeat reported it (WithHeartbeat).
	MetaPhasePrefix = "tandem.phase."
)

// discovery keeps the micro service's metadata current.
type discovery struct {
	// svcMu serializes adding, swapping and stopping the micro service.
	svcMu    sync.Mutex
	stopped  bool // fenced or shut down: never add the service again
	handlers map[string]micro.Handler
	stats    func(*micro.Endpoint) any

	// pmu guards the phases, apart from svcMu, so a heartbeat never waits
	// for a swap (which waits on NATS).
	pmu     sync.Mutex
	applied map[string]string // the phases in the running service's metadata
	want    map[string]string // the phases the last heartbeat reported
	wake    chan struct{}
}

// metadata is the micro service's metadata for phases.
func (s *Server) metadata(phases map[string]string) map[string]string {
	cur, old := s.api.current, s.api.oldest
	md := map[string]string{
		"tandem.api":     s.api.name,
		"tandem.current": cur.String(),
		"tandem.oldest":  old.String(),
		"tandem.subject": s.prefix + "." + s.api.name + ".<Method>.v<major>.<minor>",
		"tandem.cluster": s.cluster,
	}
	if s.rep == nil {
		return md // no instance: a process that registers itself
	}
	host := s.inst.Host
	if host == "" {
		host = "unknown" // what the registry records for an instance with no host
	}
	md[MetaInstance], md[MetaService], md[MetaHost] = s.inst.ID, s.inst.Service, host
	md[MetaRelease] = strconv.FormatInt(s.inst.Release, 10)
	if h, ok := s.rep.(interface{ Incarnation(string) (int64, bool) }); ok {
		if inc, ok := h.Incarnation(s.inst.ID); ok {
			md[MetaIncarnation] = strconv.FormatInt(inc, 10)
		}
	}
	for m, p := range phases {
		md[MetaPhasePrefix+m] = p
	}
	return md
}

// addService adds the micro service and its endpoints on own, with the
// metadata of phases, and flushes the subscriptions.
func (s *Server) addService(ctx context.Context, own *nats.Conn, phases map[string]string) (micro.Service, error) {
	cur, old := s.api.current, s.api.oldest
	svc, err := micro.AddService(own, micro.Config{
		StatsHandler: s.disc.stats,
		Name:         s.api.name,
		Version:      fmt.Sprintf("%d.%d.0", cur.Major, cur.Minor),
		Description:  fmt.Sprintf("%s API, versions %s to %s", s.api.name, old, cur),
		Metadata:     s.metadata(phases),
	})
	if err != nil {
		return nil, err
	}
	for _, name := range s.api.Methods() {
		ep := s.handlers[name]
		err := svc.AddEndpoint(name, s.disc.handlers[name],
			micro.WithEndpointSubject(endpointSubject(s.prefix, s.api.name, name, cur.Major)),
			micro.WithEndpointMetadata(map[string]string{
				"tandem.since":    ep.info.since.String(),
				"tandem.versions": maxVersion(ep.info.since, old).String() + "-" + cur.String(),
			}))
		if err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("endpoint %s: %w", name, err)
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	err = own.FlushWithContext(fctx)
	fcancel()
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("flush subscriptions: %w", err)
	}
	return svc, nil
}

// notePhases is called with what each heartbeat reports; other phases
// than the metadata's wake the updater.
func (s *Server) notePhases(phases map[string]string) {
	if phases == nil {
		return // a heartbeat without phases leaves them as they are
	}
	d := &s.disc
	d.pmu.Lock()
	defer d.pmu.Unlock()
	if maps.Equal(phases, d.applied) {
		d.want = nil
		return
	}
	d.want = maps.Clone(phases)
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// updateMetadata re-adds the micro service whenever notePhases wakes it,
// until ctx ends.
func (s *Server) updateMetadata(ctx context.Context) {
	d := &s.disc
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		}
		d.pmu.Lock()
		want := d.want
		d.pmu.Unlock()
		if want == nil {
			continue
		}
		if err := s.swapService(ctx, want); err != nil {
			// The old service still serves; the next heartbeat tries again.
			s.log.Warn("rpcver: micro metadata not updated", "api", s.api.name, "phases", want, "err", err)
			continue
		}
		d.pmu.Lock()
		d.applied = want
		if maps.Equal(d.want, want) {
			d.want = nil
		}
		d.pmu.Unlock()
		s.log.Debug("rpcver: micro metadata updated", "api", s.api.name, "phases", want)
	}
}

// swapService adds the service with phases' metadata, then stops the one
// it replaces (which drains its requests to the same workers).
func (s *Server) swapService(ctx context.Context, phases map[string]string) error {
	d := &s.disc
	d.svcMu.Lock()
	defer d.svcMu.Unlock()
	if d.stopped {
		return nil
	}
	next, err := s.addService(ctx, s.own, phases)
	if err != nil {
		return err
	}
	prev := s.svc
	s.svc = next
	if err := prev.Stop(); err != nil {
		return fmt.Errorf("stop the previous service: %w", err)
	}
	return nil
}

// stopService stops the micro service for good (fence, Shutdown).
func (s *Server) stopService() error {
	d := &s.disc
	d.svcMu.Lock()
	defer d.svcMu.Unlock()
	d.stopped = true
	return s.svc.Stop()
}
