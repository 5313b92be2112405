package daemon

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/users"
)

// DefaultTextfileInterval is how often the daemon rewrites [metrics]
// textfile. node_exporter reads the file at each of its scrapes, so a
// count is at most this late; the file's age (node_textfile_mtime_seconds)
// tells a stopped daemon.
const DefaultTextfileInterval = 15 * time.Second

// metricsEnd is what stopMetrics needs of what startMetrics started.
type metricsEnd struct {
	http *http.Server
	// served is closed when the HTTP server's Serve has returned (or
	// listening was given up); stopListen ends the tries to listen.
	served     chan struct{}
	stopListen context.CancelFunc
	// cancel stops the textfile writer; written is closed when it is done.
	cancel  context.CancelFunc
	written chan struct{}
}

// DefaultMetricsRetry is how often the daemon tries again to listen on
// [metrics] listen while the address cannot be listened on.
const DefaultMetricsRetry = 5 * time.Second

// startMetrics starts what [metrics] asks for: the HTTP endpoint on listen
// and the textfile writer. Both are fixed until the daemon restarts. The
// metrics themselves (d.metrics) always count, whether or not anything
// exports them.
//
// An address that cannot be listened on does not stop the daemon (unlike
// [server] listen, itself a way in): the metrics port is above 1024, so
// any local user can bind it first, at boot or while the daemon restarts,
// and a daemon that refused to start would leave no gate socket, denying
// every ForceCommand login for as long as the squatter wished. Logins
// matter more than metrics: the daemon logs the error (an error line, and
// Prometheus sees the target down or answering without latch_ssh_build_info)
// and tries again every MetricsRetry until it listens.
func (d *daemon) startMetrics(cfg users.Metrics) error {
	d.metricsCfg = cfg
	if cfg.Listen != "" {
		srv := d.metrics.Server()
		// The server's own complaints (a client's bad request) go to the
		// daemon's log as JSON lines, never as bare lines on stderr.
		srv.ErrorLog = log.New(metricsLogWriter{d}, "", 0)
		ctx, cancel := context.WithCancel(context.Background())
		d.metricsEnd.http, d.metricsEnd.served, d.metricsEnd.stopListen = srv, make(chan struct{}), cancel
		// The first try is made here, so that a daemon that started
		// listening serves /metrics as soon as Run's socket is up.
		ln, err := d.listenMetrics(ctx, cfg.Listen, nil)
		go func() {
			defer close(d.metricsEnd.served)
			if ln == nil {
				ln, _ = d.listenMetrics(ctx, cfg.Listen, err)
			}
			if ln == nil {
				return
			}
			if err := srv.Serve(newLimitListener(ln, maxMetricsConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
				// Logins matter more than metrics: the daemon goes on.
				d.log.Error().Str("event", "metrics").Str("error", safetext.Clean(err.Error())).
					Msg("the metrics endpoint stopped; logins are still served (restart the daemon to serve metrics again)")
			}
		}()
	}
	if cfg.Textfile != "" {
		interval := d.o.TextfileInterval
		if interval <= 0 {
			interval = DefaultTextfileInterval
		}
		ctx, cancel := context.WithCancel(context.Background())
		d.metricsEnd.cancel, d.metricsEnd.written = cancel, make(chan struct{})
		go func() {
			defer close(d.metricsEnd.written)
			d.writeTextfileEvery(ctx, cfg.Textfile, interval)
		}()
	}
	return nil
}

// listenMetrics listens on addr. With firstErr nil it tries once and
// returns the listener or the error, logged as an error. With firstErr
// set (the first try failed) it tries again every MetricsRetry until it
// listens, or ctx ends (then it returns nil).
func (d *daemon) listenMetrics(ctx context.Context, addr string, firstErr error) (net.Listener, error) {
	if firstErr == nil {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			d.log.Error().Str("event", "metrics").Str("listen", addr).Str("error", safetext.Clean(err.Error())).
				Msg(fmt.Sprintf("cannot listen on [metrics] listen; logins are served, metrics are not; retrying every %s (is another process, perhaps another user's, holding the port?)", d.metricsRetry()))
			return nil, err
		}
		d.log.Info().Str("event", "metrics").Str("listen", ln.Addr().String()).Msg("serving Prometheus metrics at /metrics")
		return ln, nil
	}
	t := time.NewTicker(d.metricsRetry())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		if ln, err := net.Listen("tcp", addr); err == nil {
			d.log.Info().Str("event", "metrics").Str("listen", ln.Addr().String()).Msg("serving Prometheus metrics at /metrics (the address is free now)")
			return ln, nil
		}
	}
}

// metricsRetry is Options.MetricsRetry or its default.
func (d *daemon) metricsRetry() time.Duration {
	if d.o.MetricsRetry > 0 {
		return d.o.MetricsRetry
	}
	return DefaultMetricsRetry
}

// writeTextfileEvery writes the textfile now and at every interval until
// ctx ends, then once more, so that the file holds the last counts. A
// failure is logged when it starts and when it ends, not at every
// interval.
func (d *daemon) writeTextfileEvery(ctx context.Context, path string, interval time.Duration) {
	failing := false
	write := func() {
		err := d.metrics.WriteTextfile(path)
		switch {
		case err != nil && !failing:
			d.log.Warn().Str("event", "metrics").Str("textfile", path).Str("error", safetext.Clean(err.Error())).
				Msg("cannot write the metrics textfile; retrying at every interval")
		case err == nil && failing:
			d.log.Info().Str("event", "metrics").Str("textfile", path).Msg("the metrics textfile is written again")
		}
		failing = err != nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		write()
		select {
		case <-ctx.Done():
			write()
			return
		case <-t.C:
		}
	}
}

// stopMetrics ends the HTTP endpoint and writes the textfile a last time.
// Call it when no more decisions are coming, so the file holds them all.
func (d *daemon) stopMetrics() {
	if d.metricsEnd.http != nil {
		d.metricsEnd.stopListen()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := d.metricsEnd.http.Shutdown(ctx); err != nil {
			d.metricsEnd.http.Close()
		}
		cancel()
		<-d.metricsEnd.served
		d.metricsEnd.http = nil
	}
	if d.metricsEnd.cancel != nil {
		d.metricsEnd.cancel()
		<-d.metricsEnd.written
		d.metricsEnd.cancel = nil
	}
}

// warnMetricsChanged says that a reloaded [metrics] waits for a restart.
func (d *daemon) warnMetricsChanged(cfg users.Metrics) {
	if cfg != d.metricsCfg {
		d.log.Warn().Str("event", "reload").Str("listen", cfg.Listen).Str("textfile", cfg.Textfile).
			Str("listen_in_use", d.metricsCfg.Listen).Str("textfile_in_use", d.metricsCfg.Textfile).
			Msg("[metrics] changed: it takes effect when the daemon restarts")
	}
}

// metricsLogWriter turns the HTTP server's log lines into warnings of the
// daemon's log.
type metricsLogWriter struct{ d *daemon }

func (w metricsLogWriter) Write(p []byte) (int, error) {
	w.d.log.Warn().Str("event", "metrics").Msg(safetext.Clean(strings.TrimSpace(string(p))))
	return len(p), nil
}

// maxMetricsConns bounds the connections to [metrics] listen the daemon
// holds at once (see limitListener).
const maxMetricsConns = 32

// limitListener accepts at most max connections at once: past that, Accept
// waits for one to close, and new connections wait in the kernel's
// backlog. Any local user can connect to the metrics port, and each
// accepted connection costs the daemon a file descriptor for up to the
// server's timeouts: unbounded, a flood of idle connections could take
// the descriptors the gate socket and the Latch calls need, making every
// login fail. Bounded, a flood delays scrapes only.
type limitListener struct {
	net.Listener
	slots chan struct{}
}

func newLimitListener(ln net.Listener, max int) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max)}
}

// Accept takes a slot, then accepts; the slot is freed when the
// connection is closed.
func (l *limitListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, free: func() { <-l.slots }}, nil
}

type limitConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}
