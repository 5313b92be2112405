package latchtest_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latch-ssh/latch-ssh/latch"
	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

func TestSignedRequestSucceeds(t *testing.T) {
	_, c, acc := world(t, nil)
	entry, r := c.status("/status/"+acc, appID)
	if r.status != 200 || r.code != 0 || entry["status"] != "on" {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
}

func TestAuthenticationFailures(t *testing.T) {
	fixed := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := &clock{t: fixed}
	srv, c, acc := world(t, clk)
	srv.AddApp("OTHERAPPOTHERAPPOTHE", strings.Repeat("O", 40))
	path := "/status/" + acc
	full := "/api/3.0" + path
	signAs := func(id, key, date, toSign string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Authorization", latch.AuthorizationHeader(id, latch.Sign(key, toSign)))
			r.Header.Set("X-11Paths-Date", date)
		}
	}
	stsAt := func(d time.Duration) (string, string) {
		date := latch.FormatDate(fixed.Add(d))
		return date, latch.StringToSign("GET", date, nil, full, nil)
	}
	at := func(d time.Duration) func(*http.Request) {
		date, sts := stsAt(d)
		return signAs(appID, secret, date, sts)
	}
	for _, tc := range []struct {
		name string
		edit func(*http.Request)
		want int
	}{
		{"correct", nil, 0},
		{"wrong secret", func(r *http.Request) { date, sts := stsAt(0); signAs(appID, strings.Repeat("X", 40), date, sts)(r) }, 102},
		{"another app's secret", func(r *http.Request) { date, sts := stsAt(0); signAs(appID, strings.Repeat("O", 40), date, sts)(r) }, 102},
		{"unknown app", func(r *http.Request) { date, sts := stsAt(0); signAs("NOSUCHAPPNOSUCHAPP00", secret, date, sts)(r) }, 102},
		{"no authorization", func(r *http.Request) { r.Header.Del("Authorization") }, 103},
		{"no headers at all", func(r *http.Request) { r.Header.Del("Authorization"); r.Header.Del("X-11Paths-Date") }, 103},
		{"no date", func(r *http.Request) { r.Header.Del("X-11Paths-Date") }, 104},
		{"bearer", func(r *http.Request) { r.Header.Set("Authorization", "Bearer abc") }, 101},
		{"two fields", func(r *http.Request) { r.Header.Set("Authorization", "11PATHS "+appID) }, 101},
		{"double space", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), " ", "  ", 1))
		}, 101},
		{"lower-case scheme", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "11PATHS", "11paths", 1))
		}, 101},
		{"two authorization headers", func(r *http.Request) { r.Header.Add("Authorization", r.Header.Get("Authorization")) }, 101},
		{"ISO date, signed as sent", func(r *http.Request) {
			date := fixed.Format(time.RFC3339)
			signAs(appID, secret, date, latch.StringToSign("GET", date, nil, full, nil))(r)
		}, 108},
		{"local-zone date, signed as sent", func(r *http.Request) {
			date := fixed.In(time.FixedZone("CET", 3600)).Format("2006-01-02 15:04:05 MST")
			signAs(appID, secret, date, latch.StringToSign("GET", date, nil, full, nil))(r)
		}, 108},
		{"date header not the signed one", func(r *http.Request) { r.Header.Set("X-11Paths-Date", latch.FormatDate(fixed.Add(time.Second))) }, 102},
		{"4 minutes behind", at(-4 * time.Minute), 0},
		{"4 minutes ahead", at(4 * time.Minute), 0},
		{"11 minutes behind", at(-11 * time.Minute), 109},
		{"11 minutes ahead", at(11 * time.Minute), 109},
		{"query string not signed", func(r *http.Request) { r.URL.RawQuery = "x=1" }, 102},
		{"path not the signed one", func(r *http.Request) { r.URL.Path += "/nootp" }, 102},
		{"X-11Paths header not signed", func(r *http.Request) { r.Header.Set("X-11Paths-Extra", "1") }, 102},
		{"X-11Paths header signed", func(r *http.Request) {
			date, _ := stsAt(0)
			h := map[string]string{"X-11Paths-Extra": "v 1"}
			signAs(appID, secret, date, latch.StringToSign("GET", date, h, full, nil))(r)
			r.Header.Set("X-11Paths-Extra", "v 1")
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.call("GET", path, nil, tc.edit)
			if r.status != 200 || r.code != tc.want {
				t.Fatalf("got HTTP %d %s, want code %d", r.status, r.body, tc.want)
			}
			last := srv.Requests()[len(srv.Requests())-1]
			if last.Code != tc.want || last.HTTPStatus != 200 || !last.Finished {
				t.Fatalf("logged %+v", last)
			}
		})
	}

	t.Run("window option", func(t *testing.T) {
		_, c, acc := world(t, clk, latchtest.WithDateWindow(15*time.Minute))
		c.now = func() time.Time { return clk.now().Add(11 * time.Minute) }
		if r := c.call("GET", "/status/"+acc, nil, nil); r.code != 0 {
			t.Fatalf("11 minutes with a 15-minute window: %s", r.body)
		}
	})
}

// The form body is part of the signature, as sent.
func TestPostFormIsSigned(t *testing.T) {
	srv, c, _ := world(t, nil)
	pairPath := func(tok string) string { return "/pair/" + tok }
	for _, tc := range []struct {
		name string
		edit func(tok string) func(*http.Request)
		want int
	}{
		{"correct", func(string) func(*http.Request) { return nil }, 0},
		{"body differs from the signed params", func(string) func(*http.Request) {
			return func(r *http.Request) {
				b := url.Values{"commonName": {"mallory"}}.Encode()
				r.Body, r.ContentLength = readCloser(b), int64(len(b))
			}
		}, 102},
		{"form sent without its content type", func(string) func(*http.Request) {
			return func(r *http.Request) { r.Header.Del("Content-Type") }
		}, 102},
		{"signed without params", func(tok string) func(*http.Request) {
			return func(r *http.Request) {
				date := latch.FormatDate(time.Now())
				sts := latch.StringToSign("POST", date, nil, "/api/3.0"+pairPath(tok), nil)
				r.Header.Set("Authorization", latch.AuthorizationHeader(appID, latch.Sign(secret, sts)))
				r.Header.Set("X-11Paths-Date", date)
			}
		}, 102},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := srv.IssuePairingToken(appID)
			r := c.call("POST", pairPath(tok), url.Values{"commonName": {"alice@host one"}, "b": {"2", "1"}}, tc.edit(tok))
			if r.code != tc.want {
				t.Fatalf("got %s, want code %d", r.body, tc.want)
			}
			if tc.want == 0 {
				acc, _ := r.data["accountId"].(string)
				if got := srv.CommonName(appID, acc); got != "alice@host one" {
					t.Fatalf("commonName %q", got)
				}
			}
		})
	}
}

// The answer carries an HTTP Date from the fake's clock, so clients can
// learn a clock offset from a 109.
func TestDateHeaderFollowsTheFakeClock(t *testing.T) {
	clk := &clock{t: time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)}
	_, c, acc := world(t, clk)
	c.now = time.Now
	r, err := c.send(t.Context(), "GET", "/status/"+acc, nil, nil)
	if err != nil || r.code != 109 {
		t.Fatalf("real-time date against a 2030 clock: %s, %v", r.body, err)
	}
	req, _ := http.NewRequest("GET", c.srv.URL()+"/api/3.0/status/"+acc, nil)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Date"); got != "Mon, 06 May 2030 07:08:09 GMT" {
		t.Fatalf("Date %q", got)
	}
}
