package gate

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"os"

	"github.com/latch-ssh/latch-ssh/internal/version"
	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/users"
)

// NewLatchClient builds the Latch client for cfg: credentials, API URL and
// version, CA roots from ca_file (else the system bundle from fixed paths),
// proxy from proxy (else none) and the timeout. Nothing comes from the
// environment.
func NewLatchClient(cfg *users.Config) (*latch.Client, error) {
	return newLatchClient(cfg, nil)
}

// newLatchClient is NewLatchClient with obs told about every call.
func newLatchClient(cfg *users.Config, obs latch.Observer) (*latch.Client, error) {
	c := latch.Config{
		Observer:   obs,
		AppID:      cfg.Latch.AppID,
		Secret:     cfg.Secret(),
		BaseURL:    cfg.Latch.APIURL,
		APIVersion: cfg.Latch.APIVersion,
		Timeout:    cfg.Latch.Timeout.Duration,
		UserAgent:  version.UserAgent(),
	}
	if cfg.Latch.CAFile != "" {
		pem, err := os.ReadFile(cfg.Latch.CAFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", cfg.Latch.CAFile)
		}
		c.RootCAs = pool
	}
	if cfg.Latch.Proxy != "" {
		u, err := url.Parse(cfg.Latch.Proxy)
		if err != nil {
			return nil, fmt.Errorf("proxy: %w", err)
		}
		c.Proxy = u
	}
	return latch.NewClient(c)
}

// LoadCore loads the configuration at path and builds a Core with a Latch
// client and NSS group lookups. It never fails: when the configuration
// cannot be used, the Core denies every request and says why.
func LoadCore(path string, audit Auditor) *Core {
	return LoadObservedCore(path, audit, Observers{})
}

// Observers are told what a Core does, for metrics: each may be nil.
type Observers struct {
	// Decisions becomes Core.Observer.
	Decisions DecisionObserver
	// Latch is told about every call of the core's Latch client.
	Latch latch.Observer
}

// LoadObservedCore is LoadCore with obs wired into the core and its Latch
// client (the daemon's metrics).
func LoadObservedCore(path string, audit Auditor, obs Observers) *Core {
	core := &Core{Audit: audit, Observer: obs.Decisions, Groups: NSSGroups{}, memo: newAccountMemo(NSSAccounts{})}
	cfg, err := users.Load(path)
	if err != nil {
		core.ConfigErr = err
		return core
	}
	client, err := newLatchClient(cfg, obs.Latch)
	if err != nil {
		core.ConfigErr = fmt.Errorf("%s: %w", path, err)
		return core
	}
	core.Config, core.Latch = cfg, client
	return core
}

// Close releases the Latch client's idle connections.
func (c *Core) Close() {
	if cl, ok := c.Latch.(*latch.Client); ok {
		cl.CloseIdleConnections()
	}
}
