package latch

import (
	"net/url"
	"testing"
	"time"
)

// The vectors of latch-api.md, recomputed independently of any SDK.
func TestSignKnownAnswerVectors(t *testing.T) {
	t.Run("sdk vector with headers and params", func(t *testing.T) {
		headers := map[string]string{"X-11paths-B": "Test value", "X-11paths-A": "Line\nBreaks"}
		params := url.Values{"B": {"B", "A"}, "A": {"A"}}
		got := StringToSign("POST", "2015-02-15 14:53:00", headers, "/api/1.0/pair/my_token", params)
		want := "POST\n2015-02-15 14:53:00\nx-11paths-a:Line Breaks x-11paths-b:Test value\n/api/1.0/pair/my_token\nA=A&B=A&B=B"
		if got != want {
			t.Fatalf("stringToSign:\n got %q\nwant %q", got, want)
		}
		if sig := AuthorizationHeader("MyAppID", Sign("MySecretKey", got)); sig != "11PATHS MyAppID XOxtWhv576pq8w7VAC8EoxN3SPo=" {
			t.Fatalf("authorization = %q", sig)
		}
	})
	for _, tc := range []struct{ path, want string }{
		{"/api/3.0/status/ACCOUNTID/op/OPERATIONID/nootp", "NSnGXgIb4lUp2tIy9/wLBZ9DiUE="},
		{"/api/3.0/pair/AbC123", "rJfFdxKy2HdbjVyguvCV1YxlNvk="},
	} {
		t.Run(tc.path, func(t *testing.T) {
			date := FormatDate(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			s := StringToSign("get", date, nil, tc.path, nil)
			if want := "GET\n2025-01-02 03:04:05\n\n" + tc.path; s != want {
				t.Fatalf("stringToSign = %q, want %q", s, want)
			}
			if got := Sign("EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0", s); got != tc.want {
				t.Fatalf("signature = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestStringToSignRules(t *testing.T) {
	// A POST with no params signs no trailing newline.
	if got := StringToSign("POST", "d", nil, "/p", nil); got != "POST\nd\n\n/p" {
		t.Errorf("empty POST: %q", got)
	}
	// GET never signs params, even if some are passed.
	if got := StringToSign("GET", "d", nil, "/p", url.Values{"a": {"b"}}); got != "GET\nd\n\n/p" {
		t.Errorf("GET with params: %q", got)
	}
	// The date header and unrelated headers are not part of the header line.
	h := map[string]string{"X-11Paths-Date": "x", "Content-Type": "y"}
	if got := SerializeHeaders(h); got != "" {
		t.Errorf("headers: %q", got)
	}
	// Spaces are query-escaped as "+".
	if got := SerializeParams(url.Values{"commonName": {"alice@host one"}}); got != "commonName=alice%40host+one" {
		t.Errorf("params: %q", got)
	}
}

func TestFormatDateIsUTC(t *testing.T) {
	loc := time.FixedZone("UTC+5", 5*3600)
	d := time.Date(2025, 1, 2, 8, 4, 5, 0, loc)
	if got := FormatDate(d); got != "2025-01-02 03:04:05" {
		t.Fatalf("FormatDate = %q", got)
	}
}
