package latchtest

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// The fake's own string-to-sign against the known-answer vectors of
// latch-api.md, independently of the latch package.
func TestStringToSignVectors(t *testing.T) {
	sign := func(key, s string) string {
		m := hmac.New(sha1.New, []byte(key))
		m.Write([]byte(s))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	body := "B=B&A=A&B=A"
	r, _ := http.NewRequest("POST", "/api/1.0/pair/my_token", strings.NewReader(body))
	r.RequestURI = "/api/1.0/pair/my_token"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-11paths-B", "Test value")
	r.Header.Set("X-11paths-A", "Line\nBreaks")
	r.Header.Set("X-11Paths-Date", "2015-02-15 14:53:00")
	got := stringToSign(r, "2015-02-15 14:53:00", []byte(body))
	want := "POST\n2015-02-15 14:53:00\nx-11paths-a:Line Breaks x-11paths-b:Test value\n/api/1.0/pair/my_token\nA=A&B=A&B=B"
	if got != want {
		t.Fatalf("string to sign\n%q\nwant\n%q", got, want)
	}
	if sig := sign("MySecretKey", got); sig != "XOxtWhv576pq8w7VAC8EoxN3SPo=" {
		t.Fatalf("signature %s", sig)
	}
	for path, want := range map[string]string{
		"/api/3.0/status/ACCOUNTID/op/OPERATIONID/nootp": "NSnGXgIb4lUp2tIy9/wLBZ9DiUE=",
		"/api/3.0/pair/AbC123":                           "rJfFdxKy2HdbjVyguvCV1YxlNvk=",
	} {
		r, _ := http.NewRequest("GET", path, nil)
		r.RequestURI = path
		if sig := sign("EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0", stringToSign(r, "2025-01-02 03:04:05", nil)); sig != want {
			t.Errorf("%s: %s, want %s", path, sig, want)
		}
	}
}

// Issue 13, point 1: the fake verifies form params the Java way, with its
// own encoder: the official pair and empty-lock vectors of latch-api.md,
// and "*" and "~" where Go's url.QueryEscape differs from
// java.net.URLEncoder.
func TestRealLatchFakeFormVectors(t *testing.T) {
	sign := func(s string) string {
		m := hmac.New(sha1.New, []byte("EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0"))
		m.Write([]byte(s))
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	for _, tc := range []struct{ path, body, want string }{
		{"/api/3.0/pair/AbC123", "commonName=host1+ssh", "52Y8P9UzCcKAlD+39f5oFBQZxx8="},
		{"/api/3.0/pair/AbC123", "commonName=alice%40host-1.example", "gD/428n3zSnR6sYUOXPQvnqOIlI="},
		{"/api/3.0/pair/AbC123", "commonName=ops*team%7E1+host%2F%C3%A9", "MAqz35CAbenodip8/TqFn2d8dJ4="},
		{"/api/3.0/lock/ACCOUNTID", "", "0MasBnJAJoSCB8xUtp69VDKggXg="},
	} {
		r, _ := http.NewRequest("POST", tc.path, strings.NewReader(tc.body))
		r.RequestURI = tc.path
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if got := sign(stringToSign(r, "2025-01-02 03:04:05", []byte(tc.body))); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.path, tc.body, got, tc.want)
		}
		if p := formProblem(r, []byte(tc.body)); p != "" {
			t.Errorf("%q refused: %s", tc.body, p)
		}
	}
	for in, want := range map[string]string{"*": "*", "~": "%7E", " ": "+", "-._": "-._", "\u00e9": "%C3%A9", "@/+": "%40%2F%2B"} {
		if got := javaFormEncode(in); got != want {
			t.Errorf("javaFormEncode(%q) = %q, want %q", in, got, want)
		}
	}
	// Bodies a Java client would not send.
	for _, tc := range []struct{ body, ctype string }{
		{"commonName=a%2Ab", "application/x-www-form-urlencoded"}, // "*" escaped (Go's QueryEscape)
		{"commonName=a~b", "application/x-www-form-urlencoded"},   // "~" kept (Go's QueryEscape)
		{"commonName=a%20b", "application/x-www-form-urlencoded"}, // space as %20 (Node)
		{"commonName=a%7eb", "application/x-www-form-urlencoded"}, // lower-case hex
		{"commonName", "application/x-www-form-urlencoded"},
		{"", ""}, // an empty POST without its content type
		{"", "text/plain"},
	} {
		r, _ := http.NewRequest("POST", "/api/3.0/lock/ACCOUNTID", strings.NewReader(tc.body))
		if tc.ctype != "" {
			r.Header.Set("Content-Type", tc.ctype)
		}
		if formProblem(r, []byte(tc.body)) == "" {
			t.Errorf("body %q with Content-Type %q accepted", tc.body, tc.ctype)
		}
	}
}
