package main

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/tandem-go/tandem/dialect"
	"github.com/tandem-go/tandem/dualwrite"
	"github.com/tandem-go/tandem/services"
	"github.com/tandem-go/tandem/triggers"
)

func init() {
	extraCommands = append(extraCommands, func(a *app) *cobra.Command { return a.serveCommand() })
}

// defaultServeAddr keeps the page on this machine unless asked otherwise.
const defaultServeAddr = "127.0.0.1:8080"

//go:embed web
var webFS embed.FS

var pageTemplate = template.Must(template.ParseFS(webFS, "web/page.html", "web/live.html"))

func (a *app) serveCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a live page of the rollout, /api/status and Prometheus /metrics over HTTP (read-only)",
		Long: `serve shows the rollout as it happens, read from the registry and the
ledger of --db:

  /             the page: instances grouped by release, the floor and each
                API's cap, each move with its phase, what each release does,
                what blocks the next step and the exact command, backfill
                progress; it updates live (server-sent events)
  /events       the page's live part as server-sent events
  /api/status   the JSON of tandem status --json
  /metrics      the cluster's metrics for Prometheus: floor, instances,
                caps, phases, gates and blockers, backfill, triggers

It only reads and serves no secret: the database is shown redacted. With
--nats the page follows the registry's change notices at once; without, it
rereads once a second while someone watches. It listens on 127.0.0.1 unless
--addr names another address.`,
		Example: `  tandem serve --db sqlite:///var/lib/app/app.db
  tandem serve --addr 127.0.0.1:9090 --nats nats://127.0.0.1:4222`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return &usageError{fmt.Errorf("--addr %s: %w", addr, err)}
			}
			defer ln.Close()
			reg, db, done, err := a.registry(ctx)
			if err != nil {
				return err
			}
			defer done()
			var nc *nats.Conn
			if a.natsURL != "" {
				if nc, err = a.connectNATS(); err != nil {
					return err
				}
				defer nc.Close()
			}
			srv, err := a.newStatusServer(ctx, reg, db, nc)
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(a.stdout, "tandem serve: http://%s/ (metrics on /metrics, status JSON on /api/status); Ctrl-C stops\n", ln.Addr())
			return srv.Serve(ctx, ln)
		},
	}
	cmd.Flags().StringVar(&addr, "addr", defaultServeAddr, "address to listen on (host:port); the default keeps the page on this machine")
	return cmd
}

// statusServer serves the page, the events, the status JSON and the
// metrics of one database.
type statusServer struct {
	a     *app
	reg   *services.Registry
	db    *dialect.DB
	nc    *nats.Conn
	prom  *prometheus.Registry
	cache *services.Cache
	hub   *hub
	log   *slog.Logger
	mux   *http.ServeMux
}

// serveTick is how often the live page rereads while someone watches; a
// registry notice rereads at once (coalesced to one read per
// serveMinGap).
const (
	serveTick   = time.Second
	serveMinGap = 100 * time.Millisecond
)

func (a *app) newStatusServer(ctx context.Context, reg *services.Registry, db *dialect.DB, nc *nats.Conn) (*statusServer, error) {
	s := &statusServer{a: a, reg: reg, db: db, nc: nc, prom: prometheus.NewRegistry(), log: a.logger(), mux: http.NewServeMux()}
	// The cluster-wide view: the registry through a cache (no query per
	// scrape), the ledger and the triggers read per scrape.
	var err error
	s.cache, err = services.NewCache(ctx, reg, nc, services.WithTTL(2*time.Second), services.WithMetrics(s.prom), services.WithLogger(s.log))
	if err != nil {
		return nil, err
	}
	mg, err := a.readManager(ctx, db, reg, dualwrite.WithMetrics(s.prom))
	if err != nil {
		s.cache.Close()
		return nil, err
	}
	var sets []triggers.Set
	for _, m := range mg.Moves() {
		if !m.Triggers {
			continue
		}
		if set, err := triggers.ForMove(db.Engine(), m); err == nil {
			sets = append(sets, set)
		}
	}
	if len(sets) > 0 {
		if err := s.prom.Register(triggers.NewCollector(db, sets...)); err != nil {
			s.cache.Close()
			return nil, err
		}
	}
	s.hub = newHub(s.render, s.log)
	if nc != nil {
		sub, err := nc.Subscribe(services.ChangedSubject(reg.Cluster()), func(*nats.Msg) { s.hub.kick() })
		if err != nil {
			s.cache.Close()
			return nil, fmt.Errorf("serve: subscribe to registry notices: %w", err)
		}
		s.hub.onClose = func() { _ = sub.Unsubscribe() }
	}
	static, err := fs.Sub(webFS, "web")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /{$}", http.HandlerFunc(s.page))
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.Handle("GET /events", http.HandlerFunc(s.events))
	s.mux.Handle("GET /api/status", http.HandlerFunc(s.status))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.prom, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	return s, nil
}

// Serve answers on ln until ctx ends.
func (s *statusServer) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.readOnly(s.mux), ReadHeaderTimeout: 10 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.hub.run(hctx)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Event streams end with the context; the rest finishes quickly.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer scancel()
	_ = hs.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops following the registry.
func (s *statusServer) Close() {
	if s.hub.onClose != nil {
		s.hub.onClose()
	}
	s.cache.Close()
}

// readOnly refuses every method but GET and HEAD: nothing here changes anything.
func (s *statusServer) readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "tandem serve is read-only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.ServeHTTP(w, r)
	})
}

// read builds the status report and the page's view from one reading.
func (s *statusServer) read(ctx context.Context) (statusDoc, pageView, error) {
	snap, err := s.reg.Snapshot(ctx)
	if err != nil {
		return statusDoc{}, pageView{}, err
	}
	rep, err := s.a.buildStatus(ctx, s.db, s.reg)
	if err != nil {
		return statusDoc{}, pageView{}, err
	}
	return rep, newPageView(rep, snap, time.Now()), nil
}

// render is the live part of the page, as HTML.
func (s *statusServer) render(ctx context.Context) ([]byte, error) {
	_, v, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&b, "live", v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func (s *statusServer) page(w http.ResponseWriter, r *http.Request) {
	_, v, err := s.read(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	var b bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&b, "page.html", v); err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

func (s *statusServer) status(w http.ResponseWriter, r *http.Request) {
	rep, _, err := s.read(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = writeDoc(w, "status", rep, true) // as tandem status --json prints it
}

// fail answers 503. The error goes to the log (with -v), never to the
// page: a driver's error may quote what it was given.
func (s *statusServer) fail(w http.ResponseWriter, err error) {
	s.log.Warn("serve: read failed", "err", err)
	http.Error(w, "tandem serve: the registry or the ledger could not be read; run tandem status --db ... -v to see why", http.StatusServiceUnavailable)
}

// events streams the live part of the page: at once, then each time it
// changes.
func (s *statusServer) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	ch, cancel := s.hub.subscribe()
	defer cancel()
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			var b strings.Builder
			b.WriteString("event: " + ev.name + "\n")
			for _, line := range strings.Split(string(ev.data), "\n") {
				b.WriteString("data: ")
				b.WriteString(line)
				b.WriteString("\n")
			}
			b.WriteString("\n")
			if _, err := w.Write([]byte(b.String())); err != nil {
				return
			}
			fl.Flush()
		}
	}
}
