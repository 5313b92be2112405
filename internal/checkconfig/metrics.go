package checkconfig

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
)

// checkMetrics warns about a [metrics] endpoint other hosts can reach (the
// metrics tell anyone who reads them when people log in, how often the
// latch refuses them and whether Latch is failing open), and about a
// textfile whose directory does not exist (node_exporter's textfile
// directory is created by its package).
func checkMetrics(_ context.Context, r *run) []Finding {
	if r.cfg == nil {
		return nil
	}
	m := r.cfg.Metrics
	var out []Finding
	if m.Listen != "" && !loopback(m.Listen) {
		out = append(out, r.finding(Warning, []string{"metrics", "listen"},
			fmt.Sprintf("[metrics] listen = %q is not a loopback address: other hosts can read the metrics, which reveal login activity (logins, refusals, fail-opens, live sessions)", m.Listen),
			`listen = "127.0.0.1:9469" with Prometheus (or a proxy with TLS and authentication) on this host, or a firewall that lets only Prometheus reach the port`))
	}
	if m.Textfile != "" {
		dir := filepath.Dir(m.Textfile)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			out = append(out, r.finding(Warning, []string{"metrics", "textfile"},
				fmt.Sprintf("[metrics] textfile: the directory %s does not exist, so the daemon cannot write %s", dir, filepath.Base(m.Textfile)),
				"install prometheus-node-exporter (it creates /var/lib/prometheus/node-exporter), or point textfile at its --collector.textfile.directory"))
		}
	}
	return out
}

// loopback reports whether every address listen (host:port) can bind is
// a loopback one: an IP literal in 127.0.0.0/8 or ::1, or "localhost".
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
