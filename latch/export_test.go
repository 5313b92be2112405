package latch

import "time"

// Options are the settings of a Client that Config does not expose, to
// compare them with their baseline in tests and benchmarks.
type Options struct {
	HTTP1Only  bool // do not offer HTTP/2
	NoCoalesce bool // every status call sends its own request
	MaxIdle    int  // kept-alive connections (0: MaxIdleConns)
}

// NewClientWith is NewClient with the Options o.
func NewClientWith(cfg Config, o Options) (*Client, error) {
	return newClient(cfg, options{http2: !o.HTTP1Only, coalesce: !o.NoCoalesce, maxIdle: o.MaxIdle})
}

// SetJoinWindow changes how long a status request in flight may be joined.
// Call it before the client is used.
func SetJoinWindow(c *Client, d time.Duration) { c.joinWindow = d }

// Waiting returns how many calls wait for the status request r in flight
// (0 if none is).
func Waiting(c *Client, r StatusRequest) int {
	path, err := r.Path()
	if err != nil {
		return 0
	}
	c.flights.mu.Lock()
	defer c.flights.mu.Unlock()
	if f := c.flights.m[path]; f != nil {
		return f.waiting
	}
	return 0
}
