package bench

import (
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(5), 5 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	} {
		in := append([]time.Duration(nil), tc.in...)
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
		for i := range in {
			if in[i] != tc.in[i] {
				t.Fatalf("Median reordered its input: %v", tc.in)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	for _, tc := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 95, 0},
		{ms(7), 95, 7 * time.Millisecond},
		{ms(hundred...), 95, 95 * time.Millisecond},
		{ms(hundred...), 100, 100 * time.Millisecond},
		{ms(hundred...), 1, 1 * time.Millisecond},
		// 20 samples: rank ceil(19) = 19.
		{ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 95, 19 * time.Millisecond},
		// 30 samples: rank ceil(28.5) = 29.
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30), 95, 29 * time.Millisecond},
	} {
		if got := Percentile(tc.in, tc.p); got != tc.want {
			t.Errorf("Percentile(%d samples, %v) = %v, want %v", len(tc.in), tc.p, got, tc.want)
		}
	}
}

func TestDiffs(t *testing.T) {
	got := Diffs(ms(30, 25), ms(10, 20))
	if len(got) != 2 || got[0] != 20*time.Millisecond || got[1] != 5*time.Millisecond {
		t.Errorf("Diffs = %v", got)
	}
}

func TestFormat(t *testing.T) {
	if got := Ms(21449 * time.Microsecond); got != "21.4 ms" {
		t.Errorf("Ms = %q", got)
	}
	for n, want := range map[int64]string{512: "512 B", 148_000: "148.0 kB", 19_000_000: "19.0 MB", -2048: "-2.0 kB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	got := Table([]Row{
		{Part: "1. A", Scenario: "base", Runs: 3, Median: "1.0 ms", P95: "2.0 ms", Ratio: "1.00x"},
		{Part: "1. A", Scenario: "x|y", Runs: 3, Median: "3.0 ms", Target: "≤ 2 ms", Verdict: Fail, Detail: "+1 ms"},
		{Part: "2. B", Scenario: "count", Median: "200", Target: "200", Verdict: Pass},
	})
	want := "| part | scenario | runs | median | p95 | ratio | target | result |\n" +
		"|---|---|--:|--:|--:|--:|---|---|\n" +
		"| 1. A | base | 3 | 1.0 ms | 2.0 ms | 1.00x |  | – |\n" +
		"|  | x\\|y | 3 | 3.0 ms |  |  | ≤ 2 ms | **FAIL** (+1 ms) |\n" +
		"| 2. B | count |  | 200 |  |  | 200 | pass |\n"
	if got != want {
		t.Errorf("Table:\n%s\nwant:\n%s", got, want)
	}
	if f := Failed([]Row{{Verdict: Pass}, {Scenario: "bad", Verdict: Fail}}); len(f) != 1 || f[0].Scenario != "bad" {
		t.Errorf("Failed = %v", f)
	}
	if !strings.HasPrefix(Table(nil), "| part |") {
		t.Error("empty table has no header")
	}
}
