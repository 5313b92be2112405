// Package daemon is `latch-ssh serve`, the long-running process of
// latch-ssh. It holds what an ordinary user must never read (the Latch
// secret) and what a login should not pay for twice (warm HTTPS connections
// to Latch), and answers the gate socket (package gatesocket, protocol in
// internal/gatesocket/protocol.go) for the processes that run as the person
// logging in: the ForceCommand gate and self-service pair/unpair/status.
// Every caller is identified by the kernel (SO_PEERCRED), never by what it
// sends; gatesocket.SocketServer does that part.
//
// The daemon's own job is the process around the socket: load the
// configuration (refusing to start without a valid one), swap it when it
// changes, only when the new one is valid, drain exchanges in progress on
// SIGTERM, and tell systemd where it stands (sd_notify).
//
// Every edit of the configuration reaches every front end the daemon
// serves (the ForceCommand gate, the embedded server, rechecks of live
// sessions): a pairing that still let someone in through the daemon after
// `latch-ssh pair` said it was done would be a lie. So the daemon reloads
//   - on SIGHUP (systemctl reload);
//   - right after its own self-service pair and unpair, before answering;
//   - when root's `latch-ssh pair` and `unpair`, which edit the file
//     themselves, ask it to over the socket (gatesocket.OpReload), before they
//     return;
//   - when the file or a drop-in (latch.d/*.toml) changes on disk (inotify
//     on their directories, so an editor's rename-over save is seen),
//     within DefaultWatchDelay of the last change.
//
// All go through one validated path (reloadFrom): a configuration that
// does not load is refused, logged as an error with its problems, and the
// one in force stays.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
	"github.com/latch-ssh/latch-ssh/internal/metrics"
	"github.com/latch-ssh/latch-ssh/internal/pairing"
	"github.com/latch-ssh/latch-ssh/internal/paths"
	"github.com/latch-ssh/latch-ssh/internal/safetext"
	"github.com/latch-ssh/latch-ssh/internal/sessions"
	"github.com/latch-ssh/latch-ssh/internal/sshserver"
	"github.com/latch-ssh/latch-ssh/internal/version"
	"github.com/latch-ssh/latch-ssh/users"
)

// DefaultDrainTimeout bounds how long a stopping daemon waits for exchanges
// in progress: long enough for a person who was just asked for a one-time
// code to type it (gate.OTPTimeout), and shorter than systemd's default
// TimeoutStopSec (90s), so the daemon ends on its own rather than by SIGKILL.
const DefaultDrainTimeout = gate.OTPTimeout + 5*time.Second

// Options configure Run.
type Options struct {
	// ConfigPath is the configuration file (users.DefaultPath in
	// production). Run reads it at start and on every SIGHUP.
	ConfigPath string
	// Log receives JSON lines: the daemon's own events (start, reload,
	// stop) and one line per decision from the audit log. nil means
	// os.Stderr, which journald keeps under systemd.
	Log io.Writer
	// SelfService, if set, builds the handler of pair/unpair/status from
	// the configuration path, the function that returns the core in force
	// and logf, which writes a warning line to the daemon's log (event
	// "self-service"). nil refuses self-service.
	SelfService func(cfgPath string, core func() *gate.Core, logf func(format string, args ...any)) gatesocket.SelfService
	// Socket overrides [daemon] socket.
	Socket string
	// Signals delivers the signals the daemon acts on: SIGHUP reloads the
	// configuration, SIGTERM and SIGINT stop it. The caller subscribes
	// (signal.Notify) so that tests can send them without real signals.
	// nil: only ctx stops the daemon.
	Signals <-chan os.Signal
	// DrainTimeout bounds the wait for exchanges in progress when stopping;
	// 0 means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// NoWatch turns off watching the configuration file for changes
	// (SIGHUP, self-service edits and the reload op still reload). For
	// tests of those alone.
	NoWatch bool
	// WatchDelay is how long the file must stay quiet after a change
	// before it is reloaded; 0 means DefaultWatchDelay.
	WatchDelay time.Duration
	// TextfileInterval is how often [metrics] textfile is written; 0
	// means DefaultTextfileInterval.
	TextfileInterval time.Duration
	// MetricsRetry is how often the daemon tries again to listen on
	// [metrics] listen while it cannot; 0 means DefaultMetricsRetry.
	MetricsRetry time.Duration
	// SessionsFile is the state file of the tracked OpenSSH sessions;
	// "" means sessions.json next to the gate socket (the runtime
	// directory, /run/latch-ssh).
	SessionsFile string
	// SessionGrace is how long the processes of an ended session have
	// between SIGHUP and SIGKILL; 0 means sessions.DefaultGrace.
	SessionGrace time.Duration
	// SessionObserver, if set, is told about session rechecks and ends
	// instead of the daemon's metrics (tests).
	SessionObserver gate.RecheckObserver
}

// daemon is the state of one Run.
type daemon struct {
	o      Options
	log    zerolog.Logger
	audit  gate.Auditor
	notify notifier
	// core is the decision core in force. Each exchange loads it once and
	// keeps it, so a reload never changes a decision half-way.
	core atomic.Pointer[gate.Core]
	// socket is fixed for the life of the process: the listener is built
	// once. The limiter's rate follows reloads.
	socket  string
	limiter *gatesocket.RateLimiter
	// ssh is the embedded SSH server, nil when [server] listen is empty;
	// listen is the address it was started on (fixed until a restart).
	ssh    *sshserver.Server
	listen string
	sshErr chan error
	// sessions is the table of the OpenSSH sessions the PAM hook and the
	// ForceCommand gate registered, rechecked every [server] recheck. It
	// lives as long as the process (reloads keep it) and in its state
	// file across restarts.
	sessions *sessions.Tracker
	// reloadMu serializes reloads, which come from several goroutines
	// (signals, file changes, socket exchanges): each loads the file after
	// the one before it is in force, so the last to run has read the
	// newest file. Run holds it while starting. stopping, under it, ends
	// reloads once the daemon stops, so no core is swapped in after the
	// last one is closed.
	reloadMu sync.Mutex
	stopping bool
	// metrics count whatever [metrics] says; metricsCfg is the [metrics]
	// in force (fixed until a restart) and metricsEnd what stops it.
	metrics    *metrics.Metrics
	metricsCfg users.Metrics
	metricsEnd metricsEnd
}

// Run is the daemon: it serves the gate socket until ctx is done or a
// SIGTERM or SIGINT arrives on o.Signals, then stops accepting connections,
// waits (at most o.DrainTimeout) for the exchanges in progress and returns.
// It refuses to start, returning an error, when the configuration does not
// load or the socket cannot be created. Run reads NOTIFY_SOCKET and removes
// it from the environment (see notifierFromEnv).
func Run(ctx context.Context, o Options) error {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	// The audit log and the daemon's own log share one writer from many
	// goroutines: one lock, so lines never interleave whatever o.Log is.
	w := zerolog.SyncWriter(o.Log)
	d := &daemon{
		o:     o,
		log:   zerolog.New(w).With().Timestamp().Logger(),
		audit: gate.NewWriterAudit(w),
		// Counting costs next to nothing; whether anything exports the
		// counts is [metrics]'s business (startMetrics).
		metrics: metrics.New(version.String()),
	}
	n, err := notifierFromEnv()
	if err != nil {
		d.log.Warn().Str("event", "notify").Msg(safetext.Clean(err.Error()))
	}
	d.notify = n

	// Watch before the first load, so an edit made while starting is seen.
	var cw *watcher
	if !o.NoWatch {
		if cw, err = newWatcher(o.ConfigPath); err != nil {
			d.log.Warn().Str("event", "watch").Str("error", safetext.Clean(err.Error())).
				Msg("cannot watch the configuration file: edits apply on SIGHUP (systemctl reload latch-ssh) and latch-ssh pair/unpair only")
		}
	}
	changed := make(chan struct{}, 1)
	stopWatch := func() {}
	defer func() { stopWatch() }()
	if cw != nil {
		// Closed by run, or here if Run returns before starting it.
		stopWatch = func() { cw.f.Close() }
	}
	// Reloads asked through the socket wait until the daemon has started.
	d.reloadMu.Lock()
	started := false
	defer func() {
		if !started {
			d.stopping = true
			d.reloadMu.Unlock()
		}
	}()

	core := d.loadCore()
	if core.Config == nil {
		// Starting without a configuration would deny every login while
		// looking healthy; systemd's ExecStartPre check-config says why.
		return fmt.Errorf("not starting: the configuration does not load (run `latch-ssh check-config -c %s`):\n%w", o.ConfigPath, core.ConfigErr)
	}
	d.core.Store(core)
	d.metrics.Reloaded(true)
	cfg := core.Config
	d.socket, d.limiter = cfg.Daemon.Socket, gatesocket.NewRateLimiter(cfg.Daemon.RateLimit)
	if o.Socket != "" {
		d.socket = o.Socket
	}
	ln, err := gatesocket.ListenSocket(d.socket)
	if err != nil {
		core.Close()
		return fmt.Errorf("not starting: %w", err)
	}
	srv := &gatesocket.SocketServer{
		Core:    d.core.Load,
		Limiter: d.limiter,
		Logf: func(format string, args ...any) {
			d.log.Warn().Str("event", "socket").Msg(safetext.Clean(fmt.Sprintf(format, args...)))
		},
		// Root's pair and unpair edit the file and then wait for this.
		Reload: func(context.Context) error { return d.reloadFrom("reload request", true) },
		// The PAM hook asks for decisions under this file only.
		ConfigPath: absPath(o.ConfigPath),
	}
	stateFile := o.SessionsFile
	if stateFile == "" {
		stateFile = filepath.Join(filepath.Dir(d.socket), "sessions.json")
	}
	// The tracked sessions' rechecks, ends and live count are in the
	// metrics, as the embedded server's are.
	var observer gate.RecheckObserver = d.metrics
	if o.SessionObserver != nil {
		observer = o.SessionObserver
	}
	d.sessions = sessions.New(sessions.Options{Path: stateFile, Log: d.log, Grace: o.SessionGrace, Observer: observer})
	d.metrics.AddLive(d.sessions.Live)
	srv.Sessions = sessionTable{d.sessions}
	if o.SelfService != nil {
		logf := func(format string, args ...any) {
			d.log.Warn().Str("event", "self-service").Msg(safetext.Clean(fmt.Sprintf(format, args...)))
		}
		srv.SelfService = appliedSelfService{SelfService: o.SelfService(o.ConfigPath, d.core.Load, logf), d: d}
	}
	served := make(chan error, 1)
	// Exchanges in progress must outlive the stop: cancelling their
	// context would cut a Latch call short and turn it into the fail mode.
	// Stopping closes the listener instead (see stop).
	go func() { served <- srv.Serve(context.WithoutCancel(ctx), ln) }()

	d.log.Info().Str("event", "start").Str("version", version.String()).Str("socket", d.socket).
		Str("config", o.ConfigPath).Int("rate_limit", cfg.Daemon.RateLimit).Str("listen", cfg.Server.Listen).
		Msg("latch-ssh daemon serving the gate socket")
	if d.socket != paths.GateSocket() {
		d.log.Warn().Str("event", "start").Str("socket", d.socket).Str("built_in_socket", paths.GateSocket()).
			Msg("this socket is not the one latch-ssh was built to use: the ForceCommand gate and `latch-ssh pair` will not find this daemon")
	}
	err = d.startMetrics(cfg.Metrics)
	if err == nil {
		err = d.startSSH(cfg)
	}
	if err != nil {
		d.stopMetrics()
		started = true
		d.stopping = true
		d.reloadMu.Unlock()
		ln.Close()
		<-served
		core.Close()
		return fmt.Errorf("not starting: %w", err)
	}
	started = true
	d.reloadMu.Unlock()
	if cw != nil {
		delay := o.WatchDelay
		if delay <= 0 {
			delay = DefaultWatchDelay
		}
		wctx, cancel := context.WithCancel(ctx)
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			cw.run(wctx, delay, changed, func(msg string) {
				d.log.Warn().Str("event", "watch").Msg(safetext.Clean(msg))
			})
		}()
		stopWatch = func() {
			cancel()
			<-watchDone
		}
	}
	recheckCtx, stopRechecks := context.WithCancel(context.WithoutCancel(ctx))
	rechecksDone := make(chan struct{})
	go func() {
		defer close(rechecksDone)
		d.recheckLoop(recheckCtx)
	}()
	defer func() {
		stopRechecks()
		<-rechecksDone
	}()
	d.sendNotify("READY=1", d.status())

	for {
		select {
		case <-ctx.Done():
			return d.stop(ln, served, "context done")
		case <-changed:
			d.reloadFrom("file changed", true)
		case err := <-served:
			// Serve ends on its own only when the listener broke.
			d.endReloads()
			d.log.Error().Str("event", "stop").Str("error", safetext.Clean(err.Error())).Msg("the gate socket failed; stopping")
			d.sendNotify("STOPPING=1")
			d.stopSSH()
			d.stopMetrics()
			d.core.Load().Close()
			return err
		case err := <-d.sshErr:
			d.endReloads()
			d.log.Error().Str("event", "stop").Str("error", safetext.Clean(fmt.Sprint(err))).Msg("the SSH server's listener failed; stopping")
			d.sendNotify("STOPPING=1")
			ln.Close()
			<-served
			d.stopMetrics()
			d.core.Load().Close()
			return fmt.Errorf("embedded SSH server: %w", err)
		case sig := <-o.Signals:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
			case syscall.SIGTERM, syscall.SIGINT:
				return d.stop(ln, served, sig.String())
			}
		}
	}
}

// reload is SIGHUP's reload: the new configuration is always swapped in,
// even when it reads the same, because the admin may have changed a file
// it only names (ca_file).
func (d *daemon) reload() {
	d.reloadFrom("SIGHUP", false)
}

// appliedSelfService is the daemon's self-service handler: pair and unpair
// edit the file, and the daemon puts the edit in force before it answers,
// so the person's next login through any front end follows it.
type appliedSelfService struct {
	gatesocket.SelfService
	d *daemon
}

// Pair pairs, then reloads.
func (a appliedSelfService) Pair(ctx context.Context, user, token string) pairing.Result {
	return a.d.applied("self-service pair", a.SelfService.Pair(ctx, user, token))
}

// Unpair unpairs, then reloads.
func (a appliedSelfService) Unpair(ctx context.Context, user string) pairing.Result {
	return a.d.applied("self-service unpair", a.SelfService.Unpair(ctx, user))
}

// applied reloads after a self-service edit and says so in res when the
// edit could not be put in force. Only a success has changed the file
// (self-service unpair is always refused, and a pairing whose line could
// not be written is undone): reloading on refusals too would let any local
// user make the daemon reload as fast as they can send requests.
func (d *daemon) applied(trigger string, res pairing.Result) pairing.Result {
	if !res.OK {
		return res
	}
	if err := d.reloadFrom(trigger, true); err != nil {
		res.OK = false
		res.Message += "; but this server could not put the change in force yet: ask an administrator (latch-ssh check-config)"
	}
	return res
}

// endReloads makes every later reload a no-op: the daemon is stopping.
func (d *daemon) endReloads() {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	d.stopping = true
}

// reloadFrom loads the configuration again and puts it in force only if it
// is valid: a typo in the file must not turn a running daemon into one
// that denies everybody. Exchanges in progress keep the core they started
// with. trigger says what asked (logged). With onlyChanged, a
// configuration equal to the one in force is not swapped in, which keeps
// the warm connections to Latch (a file watcher sees the daemon's own
// edits too). The error says why the file on disk is not in force.
func (d *daemon) reloadFrom(trigger string, onlyChanged bool) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.stopping {
		return errors.New("the latch-ssh daemon is stopping")
	}
	if !onlyChanged {
		d.sendNotify(reloading()...)
	}
	next := d.loadCore()
	if next.Config == nil {
		d.metrics.Reloaded(false)
		problems := strings.Split(next.ConfigErr.Error(), "\n")
		for i, p := range problems {
			problems[i] = safetext.Clean(p)
		}
		d.log.Error().Str("event", "reload-refused").Str("trigger", trigger).Str("config", d.o.ConfigPath).Strs("problems", problems).
			Msg("the new configuration is refused; the previous one stays in force (run latch-ssh check-config)")
		d.sendNotify("READY=1", fmt.Sprintf("STATUS=configuration reload refused (%d problem(s), see the log); serving with the previous configuration", len(problems)))
		return fmt.Errorf("the latch-ssh daemon refused the configuration on disk and keeps the previous one (%s): run latch-ssh check-config -c %s",
			strings.Join(problems, "; "), d.o.ConfigPath)
	}
	d.metrics.Reloaded(true)
	if onlyChanged && reflect.DeepEqual(next.Config, d.core.Load().Config) {
		next.Close()
		return nil
	}
	if onlyChanged {
		d.sendNotify(reloading()...)
	}
	old := d.core.Swap(next)
	// The old client's idle connections are of no more use; a request in
	// flight on it finishes normally.
	old.Close()
	cfg := next.Config
	d.log.Info().Str("event", "reload").Str("trigger", trigger).Str("config", d.o.ConfigPath).Msg("configuration reloaded")
	d.warnUnmapped(old.Config, cfg)
	if d.o.Socket == "" && cfg.Daemon.Socket != d.socket {
		d.log.Warn().Str("event", "reload").Str("socket", cfg.Daemon.Socket).Str("in_use", d.socket).
			Msg("[daemon] socket changed: it takes effect when the daemon restarts")
	}
	d.limiter.SetPerMinute(cfg.Daemon.RateLimit)
	if cfg.Server.Listen != d.listen {
		d.log.Warn().Str("event", "reload").Str("listen", cfg.Server.Listen).Str("in_use", d.listen).
			Msg("[server] listen changed: it takes effect when the daemon restarts")
	}
	d.warnMetricsChanged(cfg.Metrics)
	d.sendNotify("READY=1", d.status())
	return nil
}

// warnUnmapped warns when a reload took users out of [users]. With the
// pairings in a drop-in (issue 17), configuration management that purges
// latch.d (Puppet's purge => true, a directory sync) deletes every
// self-service pairing at once and the configuration still loads; with
// unpaired = "allow" those users then log in without a latch, and nothing
// else would say so. One line, with the count, the policy and the file
// where they were mapped; the names are in the file's history, not here.
func (d *daemon) warnUnmapped(prev, cfg *users.Config) {
	if prev == nil {
		return
	}
	gone, files := 0, map[string]bool{}
	for name := range prev.Users {
		if _, ok := cfg.Users[name]; !ok {
			gone++
			if s, ok := prev.UserSources[name]; ok {
				files[s.File] = true
			}
		}
	}
	if gone == 0 {
		return
	}
	d.log.Warn().Str("event", "reload").Int("unmapped", gone).Strs("mapped_in", slices.Sorted(maps.Keys(files))).Str("unpaired", string(cfg.Policy.Unpaired)).
		Msg(fmt.Sprintf("%d user(s) are no longer mapped in [users]: their logins now follow the unpaired policy (%q); if a pairing file was deleted (configuration management purging latch.d?), restore it", gone, cfg.Policy.Unpaired))
}

// loadCore loads the configuration into a new core whose decisions and
// Latch calls are counted by d.metrics.
func (d *daemon) loadCore() *gate.Core {
	return gate.LoadObservedCore(d.o.ConfigPath, d.audit, gate.Observers{Decisions: d.metrics, Latch: d.metrics})
}

// stop closes the listener (no new connections; the socket file goes with
// it), waits for the exchanges in progress up to the drain timeout, and
// releases the Latch client.
func (d *daemon) stop(ln *net.UnixListener, served <-chan error, why string) error {
	d.endReloads()
	d.log.Info().Str("event", "stop").Str("reason", why).Msg("stopping: no new connections; waiting for exchanges in progress")
	d.sendNotify("STOPPING=1")
	ln.Close()
	d.stopSSH()
	timer := time.NewTimer(d.o.DrainTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-served:
		if errors.Is(err, net.ErrClosed) {
			err = nil
		}
	case <-timer.C:
		// What is left is someone who never typed their code. When the
		// process exits their connection closes and their gate denies.
		d.log.Warn().Str("event", "drain-timeout").Str("timeout", d.o.DrainTimeout.String()).
			Msg("exchanges still in progress are abandoned")
	}
	d.stopMetrics()
	d.core.Load().Close()
	d.log.Info().Str("event", "stopped").Msg("latch-ssh daemon stopped")
	return err
}

// startSSH starts the embedded SSH server when [server] listen is set.
func (d *daemon) startSSH(cfg *users.Config) error {
	d.listen = cfg.Server.Listen
	if d.listen == "" {
		return nil
	}
	signers, err := sshserver.LoadHostKeys(cfg.Server.HostKey, d.log)
	if err != nil {
		return fmt.Errorf("[server] host_key: %w", err)
	}
	srv, err := sshserver.New(sshserver.Options{Core: d.core.Load, HostSigners: signers, Log: d.log, Observer: d.metrics})
	if err != nil {
		return err
	}
	d.metrics.AddLive(srv.Live)
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("[server] listen = %q: %w", d.listen, err)
	}
	if os.Geteuid() != 0 {
		d.log.Warn().Str("event", "start").Msg("not running as root: the embedded SSH server serves only the account it runs as")
	}
	d.ssh, d.sshErr = srv, make(chan error, 1)
	go func() {
		if err := srv.Serve(ln); err != nil {
			d.sshErr <- err
		}
	}()
	return nil
}

// stopSSH ends the embedded server: the listener, then every connection.
// The sessions live in this process, so stopping the daemon ends them; each
// is told why on its stderr first.
func (d *daemon) stopSSH() {
	if d.ssh == nil {
		return
	}
	d.ssh.Stop("latch-ssh is stopping: ending this session")
}

// status is the STATUS= line for systemd.
func (d *daemon) status() string {
	st := "STATUS=serving the gate socket at " + d.socket
	if d.listen != "" {
		st += " and SSH on " + d.listen
	}
	return st
}

// sendNotify tells systemd, when it runs us, where we stand. A failure is
// logged and otherwise ignored: serving logins matters more.
func (d *daemon) sendNotify(lines ...string) {
	if err := d.notify.send(lines...); err != nil {
		d.log.Warn().Str("event", "notify").Str("error", safetext.Clean(err.Error())).Msg("cannot notify systemd")
	}
}

// absPath is path made absolute (as the PAM hook sends its own), or path
// itself when the working directory is gone.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
