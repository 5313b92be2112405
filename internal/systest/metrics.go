package systest

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one exposition of Prometheus metrics, parsed: the families by
// name.
type Metrics map[string]*dto.MetricFamily

// ParseMetrics parses text in Prometheus's text format (a /metrics scrape,
// a node_exporter textfile), failing the test when it does not parse.
func ParseMetrics(t testing.TB, text string) Metrics {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	return mfs
}

// Scrape reads url (an http:// /metrics endpoint) and returns its text,
// failing the test unless it answers 200 within CommandTimeout.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	c := &http.Client{Timeout: CommandTimeout}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: HTTP %d, %v:\n%s", url, resp.StatusCode, err, body)
	}
	return string(body)
}

// Value is the value of the counter or gauge name whose labels include
// every pair of labels ("k1", "v1", "k2", "v2"...), summed over the other
// labels; 0 when there is none.
func (m Metrics) Value(name string, labels ...string) float64 {
	mf := m[name]
	if mf == nil {
		return 0
	}
	sum := 0.0
	for _, metric := range mf.GetMetric() {
		if !hasLabels(metric, labels) {
			continue
		}
		switch {
		case metric.Counter != nil:
			sum += metric.GetCounter().GetValue()
		case metric.Gauge != nil:
			sum += metric.GetGauge().GetValue()
		case metric.Histogram != nil:
			sum += float64(metric.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func hasLabels(metric *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range metric.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// WaitMetric scrapes url until the value of name with labels (see Value)
// is want, failing the test after limit with the last scrape's lines of
// name. It returns the last scrape.
func WaitMetric(t testing.TB, url string, limit time.Duration, want float64, name string, labels ...string) Metrics {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		text := Scrape(t, url)
		m := ParseMetrics(t, text)
		got := m.Value(name, labels...)
		if got == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s%v = %v (it is %v); the scrape's lines of it:\n%s",
				limit, name, labels, want, got, grepLines(text, name))
		}
		<-tick.C
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// PromtoolCheckMetrics runs `promtool check metrics` (the linter of
// Prometheus's naming conventions) on text, failing the test on any
// complaint.
func PromtoolCheckMetrics(t testing.TB, promtool, text string) {
	t.Helper()
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	stdout, stderr, code := Run(t, cmd)
	if out := strings.TrimSpace(stdout + stderr); code != 0 || out != "" {
		t.Fatalf("promtool check metrics (exit %d):\n%s", code, out)
	}
}
