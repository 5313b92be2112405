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

// Issue 13, point 1: the official vectors of latch-api.md for signed form
// params and an empty POST, produced by the official SDKs' own signing
// code, and one with "*" and "~" (where java.net.URLEncoder and Go's
// url.QueryEscape differ), computed independently with Java's rules.
func TestRealLatchSignFormVectors(t *testing.T) {
	const key = "EXAMPLESECRETEXAMPLESECRETEXAMPLESECRET0"
	date := FormatDate(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	for _, tc := range []struct {
		name, path string
		params     url.Values
		sts, want  string
	}{
		{"pair commonName with a space", "/api/3.0/pair/AbC123", url.Values{"commonName": {"host1 ssh"}},
			"POST\n2025-01-02 03:04:05\n\n/api/3.0/pair/AbC123\ncommonName=host1+ssh", "52Y8P9UzCcKAlD+39f5oFBQZxx8="},
		{"pair commonName with an at sign", "/api/3.0/pair/AbC123", url.Values{"commonName": {"alice@host-1.example"}},
			"POST\n2025-01-02 03:04:05\n\n/api/3.0/pair/AbC123\ncommonName=alice%40host-1.example", "gD/428n3zSnR6sYUOXPQvnqOIlI="},
		{"pair commonName with star, tilde, slash, UTF-8", "/api/3.0/pair/AbC123", url.Values{"commonName": {"ops*team~1 host/\u00e9"}},
			"POST\n2025-01-02 03:04:05\n\n/api/3.0/pair/AbC123\ncommonName=ops*team%7E1+host%2F%C3%A9", "MAqz35CAbenodip8/TqFn2d8dJ4="},
		{"lock, no params", "/api/3.0/lock/ACCOUNTID", nil,
			"POST\n2025-01-02 03:04:05\n\n/api/3.0/lock/ACCOUNTID", "0MasBnJAJoSCB8xUtp69VDKggXg="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sts := StringToSign("POST", date, nil, tc.path, tc.params)
			if sts != tc.sts {
				t.Fatalf("stringToSign:\n got %q\nwant %q", sts, tc.sts)
			}
			if got := Sign(key, sts); got != tc.want {
				t.Fatalf("signature %s, want %s", got, tc.want)
			}
		})
	}
}

// Issue 13, point 1: FormEscape is java.net.URLEncoder.encode(s, "UTF-8").
func TestRealLatchFormEscapeIsJava(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "",
		"AZaz09":               "AZaz09",
		"-._*":                 "-._*",
		"~":                    "%7E",
		" ":                    "+",
		"+&=%":                 "%2B%26%3D%25",
		"a/b:c;d?e#f":          "a%2Fb%3Ac%3Bd%3Fe%23f",
		"!'()":                 "%21%27%28%29",
		"\u00e9\u20ac":         "%C3%A9%E2%82%AC",
		"\x00\n\x7f":           "%00%0A%7F",
		"alice@host-1.example": "alice%40host-1.example",
	} {
		if got := FormEscape(in); got != want {
			t.Errorf("FormEscape(%q) = %q, want %q", in, got, want)
		}
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
