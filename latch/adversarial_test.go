package latch_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// TestAttackSlowDripAnswer: a server (or a middlebox) that trickles its
// answer one byte a second. Without the single context deadline around the
// whole call (net/http has no overall read timeout, and the transport's
// ResponseHeaderTimeout is off), every byte would restart nothing and the
// call would last as long as the server likes: minutes for a few hundred
// bytes, with the person waiting at the login prompt and the fail mode
// never applied. With it, the call ends at the deadline with a typed
// transport error, never an open latch.
func TestAttackSlowDripAnswer(t *testing.T) {
	srv, c, acc := setup(t)
	srv.SetFault(acc, latchtest.Fault{Drip: time.Second})
	const deadline = time.Second
	start := time.Now()
	st, err := c.Status(ctxTimeout(t, deadline), latch.StatusRequest{AccountID: acc})
	took := time.Since(start)
	if !isDeadline(err) || st.Open {
		t.Fatalf("dripped answer: status %+v, err %v (%T); want a deadline TransportError", st, err, err)
	}
	if took > deadline+time.Second {
		t.Fatalf("the call took %v with a %v deadline", took, deadline)
	}
	// The client's Timeout bounds it too, when the caller gave no deadline.
	bounded, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: srv.URL(), RootCAs: srv.CertPool(), Timeout: deadline})
	if err != nil {
		t.Fatal(err)
	}
	defer bounded.CloseIdleConnections()
	start = time.Now()
	if _, err := bounded.Status(context.Background(), latch.StatusRequest{AccountID: acc}); !isDeadline(err) {
		t.Fatalf("Config.Timeout against a drip: %v", err)
	}
	if took := time.Since(start); took > deadline+time.Second {
		t.Fatalf("Config.Timeout: the call took %v", took)
	}
}

// TestAttackEndlessAnswer: a server that streams a body without end (no
// Content-Length, chunked). Without MaxAnswerSize the client would buffer
// until the deadline, growing by whatever the link carries (hundreds of MB
// on loopback in a few seconds). With it, the call stops after 1 MiB, well
// before the deadline, as a malformed answer.
func TestAttackEndlessAnswer(t *testing.T) {
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		chunk := []byte(`{"data":{"operations":{"` + appID + `":{"status":"on","pad":"` + strings.Repeat("a", 32<<10))
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			chunk = []byte(strings.Repeat("a", 32<<10))
		}
	}))
	defer hs.Close()
	pool := hs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := latch.NewClient(latch.Config{AppID: appID, Secret: secret, BaseURL: hs.URL, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const deadline = 10 * time.Second
	start := time.Now()
	st, err := c.Status(ctxTimeout(t, deadline), latch.StatusRequest{AccountID: strings.Repeat("A", 64)})
	took := time.Since(start)
	if !errors.Is(err, latch.ErrMalformed) || st.Open {
		t.Fatalf("endless answer: %+v, %v; want ErrMalformed", st, err)
	}
	if took > deadline/2 {
		t.Fatalf("the call took %v: the size limit did not end it", took)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 64<<20 {
		t.Fatalf("the call allocated %d MiB for a 1 MiB limit", grew>>20)
	}
}
