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
