package checkconfig

import (
	"context"
	"time"

	"github.com/latch-ssh/latch-ssh/gate"
)

// checkLatch builds the Latch client as the gate does (ca_file, proxy),
// and with --online asks Latch once whether it accepts app_id and secret.
// It runs only on a file that loads: otherwise the [latch] values may be
// missing, and asking Latch with them would say nothing more.
func checkLatch(ctx context.Context, r *run) []Finding {
	if !r.loads() {
		return nil
	}
	cfg := r.cfg
	client, err := gate.NewLatchClient(cfg)
	if err != nil {
		return []Finding{r.finding(Error, []string{"latch"}, "[latch]: "+err.Error(), "")}
	}
	defer client.CloseIdleConnections()
	if !r.opts.Online {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Latch.Timeout.Duration+time.Second)
	defer cancel()
	if _, err := client.Operations(ctx, ""); err != nil {
		reason, fix, _ := gate.Classify(err, cfg.Latch.Timeout.Duration)
		return []Finding{{Severity: Error, File: cfg.Path, Message: "Latch: " + reason, Fix: fix}}
	}
	return []Finding{{Severity: OK, Message: "Latch accepted app_id and secret"}}
}
