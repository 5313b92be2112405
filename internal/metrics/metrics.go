// Package metrics is the daemon's Prometheus metrics ([metrics] in
// latch.toml): what an on-call engineer needs to see about the logins a
// server lets in and refuses, and about the Latch service behind them.
//
// It implements the small observer interfaces the other packages define
// so that they need no metrics library: gate.DecisionObserver (every
// decision the audit log records), latch.Observer (every Latch call),
// gate.RecheckObserver (rechecks and the sessions they end, on the
// embedded server and by the OpenSSH session tracker), and a live-sessions
// function per front end (AddLive). The daemon reports its reloads
// (Reloaded), serves Handler on [metrics] listen and writes
// WriteTextfile to [metrics] textfile.
//
// Every label value comes from a fixed list (the allowlists below):
// anything else is counted as "other". No user name, account id, address,
// reason text or Latch message ever becomes a label, for the privacy of
// the people logging in and so that no caller can grow the number of
// series. Everything lives in a private prometheus.Registry owned by one
// Metrics value; nothing is registered with the default registry.
package metrics

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/latch"
)

// Namespace prefixes every metric of latch-ssh.
const Namespace = "latch_ssh"

// Other is the label value of anything outside its allowlist.
const Other = "other"

// The allowlists of label values, as functions so that no package-level
// state exists to change. A value outside its list is counted as Other
// (see label).

// frontEnds are the front ends of gate; the OpenSSH session tracker
// (internal/sessions) uses the same names for the PAM hook's and the
// ForceCommand gate's sessions.
func frontEnds() []string {
	return []string{gate.FrontEndPAM, gate.FrontEndForceCommand, gate.FrontEndServer}
}

func outcomes() []string {
	return []string{gate.Allow.String(), gate.Deny.String(), gate.AskOTP.String()}
}

// calls are the first segments of the Latch API paths the client calls.
func calls() []string {
	return []string{"status", "pair", "pairWithId", "unpair", "lock", "unlock", "history", "operation", "instance", "application"}
}

func recheckResults() []string {
	return []string{gate.RecheckKept, gate.RecheckEnded, gate.RecheckError}
}

func reloadResults() []string { return []string{"ok", "failed"} }

// kindName names each latch.Kind for the kind label of Latch errors.
func kindName(k latch.Kind) string {
	switch k {
	case latch.KindTimeout:
		return "timeout"
	case latch.KindCanceled:
		return "canceled"
	case latch.KindCredentials:
		return "credentials"
	case latch.KindClock:
		return "clock"
	case latch.KindNotPaired:
		return "not-paired"
	case latch.KindAccount, latch.KindAccountMessage:
		return "account"
	case latch.KindPairing:
		return "pairing"
	case latch.KindUnpairing:
		return "unpairing"
	case latch.KindNotFound:
		return "not-found"
	case latch.KindOurBug:
		return "bad-request"
	case latch.KindNoToken:
		return "no-token"
	case latch.KindSubscription:
		return "subscription"
	case latch.KindUnknownCode:
		return "unknown-code"
	case latch.KindTLS:
		return "tls"
	case latch.KindHTTP:
		return "http"
	case latch.KindMalformed:
		return "malformed"
	case latch.KindNetwork:
		return "network"
	}
	return "other"
}

// Allowlists returns, for each label name, every value it can take
// (Other included): the contract the tests check every scrape against.
func Allowlists() map[string][]string {
	classes := []string{Other}
	for _, c := range gate.Classes() {
		classes = append(classes, string(c))
	}
	kindNames := []string{}
	for k := latch.KindOther; k <= latch.KindNetwork; k++ {
		if n := kindName(k); !slices.Contains(kindNames, n) {
			kindNames = append(kindNames, n)
		}
	}
	codes := []string{"none", "unknown", "http-other"}
	for c := 100; c <= 799; c++ {
		codes = append(codes, strconv.Itoa(c))
	}
	for s := 100; s <= 599; s++ {
		codes = append(codes, "http-"+strconv.Itoa(s))
	}
	return map[string][]string{
		"front_end": append(frontEnds(), Other),
		"outcome":   append(outcomes(), Other),
		"reason":    classes,
		"call":      append(calls(), Other),
		"kind":      kindNames,
		"code":      codes,
		"result":    append(append(recheckResults(), reloadResults()...), Other),
	}
}

// label is v when allowed holds it, else Other.
func label(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return Other
}

// Metrics holds the daemon's metrics in a private registry. It is safe
// for concurrent use; build it with New.
type Metrics struct {
	reg *prometheus.Registry

	decisions      *prometheus.CounterVec
	failOpen       *prometheus.CounterVec
	latchDuration  *prometheus.HistogramVec
	latchErrors    *prometheus.CounterVec
	rechecks       *prometheus.CounterVec
	sessionsEnded  *prometheus.CounterVec
	reloads        *prometheus.CounterVec
	lastReloadOK   prometheus.Gauge
	lastReloadTime prometheus.Gauge

	liveMu sync.Mutex
	live   []func() map[string]int
}

// New builds the metrics of one daemon, with versionString as the version
// label of latch_ssh_build_info.
func New(versionString string) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "decisions_total",
		Help: "Login decisions by front end (pam, forcecommand, server), outcome (allow, deny) and reason class (latch-open, latch-closed, unpaired, exempt, fail-open, fail-closed, otp-..., config, account, refused...).",
	}, []string{"front_end", "outcome", "reason"})
	m.failOpen = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "fail_open_decisions_total",
		Help: "Logins let in because Latch could not answer and fail_mode = \"open\": each one was let in without the latch being checked.",
	}, []string{"front_end"})
	m.latchDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "latch_request_duration_seconds",
		Help:    "Duration of calls to the Latch API (retries included), by call (status, pair, unpair...), successful or not.",
		Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	}, []string{"call"})
	m.latchErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "latch_errors_total",
		Help: "Failed calls to the Latch API by call, kind (timeout, network, tls, http, malformed, credentials, clock, not-paired, not-found, subscription...) and code (the Latch error code, http-NNN for an HTTP status without a Latch error, none otherwise).",
	}, []string{"call", "kind", "code"})
	m.rechecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rechecks_total",
		Help: "Rechecks of users with live sessions, by front end and result (kept, ended, error: Latch could not answer and the sessions were kept).",
	}, []string{"front_end", "result"})
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "sessions_ended_total",
		Help: "Sessions (connections) ended by a recheck because the latch was closed, by front end.",
	}, []string{"front_end"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "config_reloads_total",
		Help: "Configuration reloads by result (ok; failed: the new configuration was refused and the previous one stays in force).",
	}, []string{"result"})
	m.lastReloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "config_last_reload_successful",
		Help: "1 if the last configuration load (start or reload) succeeded, 0 if the configuration on disk was refused.",
	})
	m.lastReloadTime = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "config_last_reload_success_timestamp_seconds",
		Help: "Unix time of the last successful configuration load.",
	})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "build_info",
		Help:        "Always 1; the labels are the latch-ssh version and the Go version it was built with.",
		ConstLabels: prometheus.Labels{"version": versionString, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.decisions, m.failOpen, m.latchDuration, m.latchErrors, m.rechecks,
		m.sessionsEnded, m.reloads, m.lastReloadOK, m.lastReloadTime, buildInfo, newLiveCollector(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// The series an alert watches exist from the start, at 0: a counter
	// that appears already at 1 shows no increase() to Prometheus, so the
	// first fail-open or failed reload would not fire the alert.
	for _, fe := range []string{gate.FrontEndPAM, gate.FrontEndForceCommand, gate.FrontEndServer} {
		m.failOpen.WithLabelValues(fe)
	}
	for _, r := range reloadResults() {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// Decided counts one decision (gate.DecisionObserver). Only the front end,
// the outcome and the class are read; the reason text, user and address
// are not.
func (m *Metrics) Decided(frontEnd string, d gate.Decision) {
	fe := label(frontEnd, frontEnds())
	reason := string(d.Class)
	if !slices.Contains(gate.Classes(), d.Class) {
		reason = Other
	}
	m.decisions.WithLabelValues(fe, label(d.Outcome.String(), outcomes()), reason).Inc()
	if d.Allowed() && d.FailModeApplied {
		m.failOpen.WithLabelValues(fe).Inc()
	}
}

// LatchCall records one Latch call (latch.Observer).
func (m *Metrics) LatchCall(call string, took time.Duration, err error) {
	call = label(call, calls())
	m.latchDuration.WithLabelValues(call).Observe(took.Seconds())
	if err == nil {
		return
	}
	c := latch.Classify(err)
	m.latchErrors.WithLabelValues(call, kindName(c.Kind), errorCode(c)).Inc()
}

// errorCode is the code label of a failed Latch call: the Latch error
// code when Latch sent one it defines (100..799), "unknown" for any other
// code, http-NNN for an HTTP status without a Latch error object, "none"
// for the rest (timeouts, network, TLS, malformed answers).
func errorCode(c latch.Class) string {
	switch {
	case c.Kind == latch.KindHTTP && c.HTTPStatus >= 100 && c.HTTPStatus <= 599:
		return "http-" + strconv.Itoa(c.HTTPStatus)
	case c.Kind == latch.KindHTTP:
		return "http-other"
	case c.Code >= 100 && c.Code <= 799:
		return strconv.Itoa(c.Code)
	case c.Code != 0:
		return "unknown"
	}
	return "none"
}

// Rechecked counts one recheck (result gate.RecheckKept, RecheckEnded or
// RecheckError): gate.RecheckObserver.
func (m *Metrics) Rechecked(frontEnd, result string) {
	m.rechecks.WithLabelValues(label(frontEnd, frontEnds()), label(result, recheckResults())).Inc()
}

// Ended counts n sessions a recheck ended.
func (m *Metrics) Ended(frontEnd string, n int) {
	if n > 0 {
		m.sessionsEnded.WithLabelValues(label(frontEnd, frontEnds())).Add(float64(n))
	}
}

// Reloaded records a configuration load: ok is false when the
// configuration on disk was refused. The daemon's first load counts too,
// so that the gauge and the timestamp are set from the start.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.lastReloadOK.Set(1)
		m.lastReloadTime.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("failed").Inc()
	m.lastReloadOK.Set(0)
}

// AddLive adds a source of live sessions: f returns their number by front
// end, and is called at each scrape (so it must be quick). The embedded
// server's Live and the OpenSSH session tracker's Live have this shape.
// The numbers of several sources for one front end add up.
func (m *Metrics) AddLive(f func() map[string]int) {
	m.liveMu.Lock()
	defer m.liveMu.Unlock()
	m.live = append(m.live, f)
}

// liveCollector turns the live-session sources into
// latch_ssh_live_sessions at scrape time.
type liveCollector struct {
	m    *Metrics
	desc *prometheus.Desc
}

func newLiveCollector(m *Metrics) liveCollector {
	return liveCollector{m: m, desc: prometheus.NewDesc(Namespace+"_live_sessions",
		"Sessions open now (logins in progress), by front end.", []string{"front_end"}, nil)}
}

// Describe implements prometheus.Collector.
func (l liveCollector) Describe(ch chan<- *prometheus.Desc) { ch <- l.desc }

// Collect implements prometheus.Collector.
func (l liveCollector) Collect(ch chan<- prometheus.Metric) {
	l.m.liveMu.Lock()
	sources := slices.Clone(l.m.live)
	l.m.liveMu.Unlock()
	sum := map[string]int{}
	for _, f := range sources {
		for fe, n := range f() {
			sum[label(fe, frontEnds())] += n
		}
	}
	for fe, n := range sum {
		ch <- prometheus.MustNewConstMetric(l.desc, prometheus.GaugeValue, float64(n), fe)
	}
}

// maxScrapesInFlight bounds the scrapes gathered at once; more get HTTP
// 503 at once. Any local user can reach [metrics] listen, and gathering
// costs the daemon CPU that logins need.
const maxScrapesInFlight = 4

// Handler serves the metrics in Prometheus's formats. Errors while
// gathering are served as HTTP 500, so that a scrape cannot half-succeed
// silently.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Registry: m.reg, MaxRequestsInFlight: maxScrapesInFlight})
}

// Server is the HTTP server of [metrics] listen: /metrics and nothing
// else, with timeouts so that a stuck client cannot hold connections.
func (m *Metrics) Server() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// Gather returns latch-ssh's own metric families: the latch_ssh_* ones,
// without the Go runtime's and the process's (node_exporter exports its
// own go_* and process_*, and a textfile holding them too would make its
// scrape fail).
func (m *Metrics) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := m.reg.Gather()
	if err != nil {
		return nil, fmt.Errorf("gathering metrics: %w", err)
	}
	return slices.DeleteFunc(mfs, func(mf *dto.MetricFamily) bool {
		return !strings.HasPrefix(mf.GetName(), Namespace+"_")
	}), nil
}

// WriteTextfile writes latch-ssh's own metrics (Gather) to path for
// node_exporter's textfile collector, atomically: a temporary file in the
// same directory (whose name does not end in .prom, so node_exporter never
// reads it half-written), mode 0644 (node_exporter does not run as root),
// renamed over path.
//
// Not client_golang's WriteToTextfile: it chmods the temporary file by
// name, after writing it. The daemon writes as root into a directory that
// is often not root's (node_exporter's user owns its textfile directory),
// and that directory's owner can swap the name for a symbolic link in the
// meantime: the chmod would follow it and make any root-only file (the
// Latch secret, /etc/shadow) readable by all. Here the mode is set on the
// open file (fchmod) when it is created (O_EXCL: never an existing file or
// link); a name swapped afterwards only changes what is renamed into the
// directory its owner can write anyway.
func (m *Metrics) WriteTextfile(path string) error {
	if err := writeTextfile(path, m.Gather); err != nil {
		return fmt.Errorf("writing the metrics textfile %s: %w", path, err)
	}
	return nil
}

func writeTextfile(path string, gather func() ([]*dto.MetricFamily, error)) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	mfs, err := gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(tmp, mf); err != nil {
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
