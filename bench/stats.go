package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Median returns the median of d (the mean of the two middle values when
// len(d) is even), or 0 for no samples. d is not modified.
func Median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := sorted(d)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile returns the p-th percentile (0 < p <= 100) of d by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. It returns 0 for no samples. d is not modified.
func Percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := sorted(d)
	rank := int(p/100*float64(len(s)) + 0.999999999)
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// Diffs returns a[i]-b[i] for each i (paired differences of two series
// measured in the same rounds); the series must have the same length.
func Diffs(a, b []time.Duration) []time.Duration {
	if len(a) != len(b) {
		panic("bench: Diffs of series of different lengths")
	}
	out := make([]time.Duration, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

func sorted(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// Ms formats d in milliseconds with one decimal: "21.4 ms".
func Ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// Bytes formats a size in decimal units, as the targets are written:
// "512 B", "148.0 kB", "18.3 MB".
func Bytes(n int64) string {
	switch a := max(n, -n); {
	case a >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	default:
		return fmt.Sprintf("%d B", n)
	}
}

// Verdict is the result cell of a row.
type Verdict int

// The verdicts: Info rows (baselines, components) have no target.
const (
	Info Verdict = iota
	Pass
	Fail
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Fail:
		return "**FAIL**"
	}
	return "–"
}

// Check returns Pass when ok, else Fail.
func Check(ok bool) Verdict {
	if ok {
		return Pass
	}
	return Fail
}

// Row is one line of the results table. Cells that do not apply are "".
type Row struct {
	Part     string // "1. Decision latency"; shown on the part's first row only
	Scenario string
	Runs     int // samples behind Median and P95; 0 when not a timing
	Median   string
	P95      string
	Ratio    string // to the part's baseline
	Target   string
	Verdict  Verdict
	// Detail follows the verdict: the measured quantity the target is
	// about, when it is not the median itself ("+23.1 ms over plain").
	Detail string
}

// Table renders rows as one Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| part | scenario | runs | median | p95 | ratio | target | result |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|---|---|\n")
	last := ""
	for _, r := range rows {
		part := ""
		if r.Part != last {
			part, last = r.Part, r.Part
		}
		runs := ""
		if r.Runs > 0 {
			runs = fmt.Sprint(r.Runs)
		}
		result := r.Verdict.String()
		if r.Detail != "" {
			result += " (" + r.Detail + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n",
			cell(part), cell(r.Scenario), runs, cell(r.Median), cell(r.P95), cell(r.Ratio), cell(r.Target), cell(result))
	}
	return b.String()
}

// cell escapes what would break a table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// Failed returns the rows whose verdict is Fail.
func Failed(rows []Row) []Row {
	var out []Row
	for _, r := range rows {
		if r.Verdict == Fail {
			out = append(out, r)
		}
	}
	return out
}
