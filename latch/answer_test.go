package latch

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

const testApp = "EXAMPLEAPPID00000000"

func TestDecodeStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		body    string
		id      string
		open    bool
		token   string
		wantErr string // "" ok, "malformed", or "code:N"
	}{
		{"on", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on"}}}}`, testApp, true, "", ""},
		{"off", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"off"}}}}`, testApp, false, "", ""},
		{"two factor", `{"data":{"operations":{"OP":{"status":"on","two_factor":{"token":"g2sEXg","generated":1425209705208}}}}}`, "OP", true, "g2sEXg", ""},
		{"error wins over data", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on"}}},"error":{"code":201,"message":"Account not paired"}}`, testApp, false, "", "code:201"},
		{"entry for another id", `{"data":{"operations":{"OTHER":{"status":"on"}}}}`, testApp, false, "", "malformed"},
		{"unknown status", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"maybe"}}}}`, testApp, false, "", "malformed"},
		{"status case matters", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"ON"}}}}`, testApp, false, "", "malformed"},
		{"status not a string", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":true}}}}`, testApp, false, "", "malformed"},
		{"missing status", `{"data":{"operations":{"EXAMPLEAPPID00000000":{}}}}`, testApp, false, "", "malformed"},
		{"empty object", `{}`, testApp, false, "", "malformed"},
		{"not json", `<html>502 Bad Gateway</html>`, testApp, false, "", "malformed"},
		{"truncated", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on"`, testApp, false, "", "malformed"},
		{"trailing garbage", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on"}}}} {"x":1}`, testApp, false, "", "malformed"},
		{"array", `[{"status":"on"}]`, testApp, false, "", "malformed"},
		{"substring trap", `{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"off","note":"\"status\":\"on\""}}}}`, testApp, false, "", ""},
		{"empty token", `{"data":{"operations":{"OP":{"status":"on","two_factor":{"token":""}}}}}`, "OP", false, "", "malformed"},
		{"token with escape", `{"data":{"operations":{"OP":{"status":"on","two_factor":{"token":"\u001b[2J"}}}}}`, "OP", false, "", "malformed"},
		{"error without code", `{"error":{"message":"x"}}`, testApp, false, "", "malformed"},
		// Issue 13, point 1: a child in an odd shape never fails the entry asked for.
		{"nested bad child", `{"data":{"operations":{"OP":{"status":"on","operations":{"C":{"status":"?"}}}}}}`, "OP", true, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := decodeEnvelope([]byte(tc.body))
			var st Status
			if err == nil {
				st, err = decodeStatus(a.data, tc.id)
			}
			switch {
			case tc.wantErr == "":
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if st.Open != tc.open {
					t.Fatalf("Open = %v, want %v", st.Open, tc.open)
				}
				if tc.token != "" && (st.TwoFactor == nil || st.TwoFactor.Token != tc.token) {
					t.Fatalf("TwoFactor = %+v, want token %q", st.TwoFactor, tc.token)
				}
			case tc.wantErr == "malformed":
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
			case strings.HasPrefix(tc.wantErr, "code:"):
				if code := ErrorCode(err); "code:"+strconv.Itoa(code) != tc.wantErr {
					t.Fatalf("err = %v, want %s", err, tc.wantErr)
				}
			}
			if err != nil && st.Open {
				t.Fatal("an error came with Open = true")
			}
		})
	}
}

// Issue 13, point 1: a status answer may carry the asked entry's child
// operations nested in it; only the entry asked for decides, children are
// read leniently (kept when their status is on/off, left out otherwise),
// and no child shape can make the answer malformed or open a closed latch.
func TestRealLatchChildOperationsNeverFailDecision(t *testing.T) {
	children := `{"GOOD1":{"status":"off","name":"good"},` +
		`"NOSTATUS":{"name":"no status"},` +
		`"ODD":{"status":"interactive"},` +
		`"UPPER":{"status":"ON"},` +
		`"NUMBER":{"status":1},` +
		`"NOTOBJ":"on",` +
		`"ARRAY":[{"status":"on"}],` +
		`"NULL":null,` +
		`"GOOD2":{"status":"on","two_factor":"not an object","operations":{"GRAND":{"status":"on"},"BAD":{}}},` +
		`"NESTEDODD":{"status":"on","operations":"not an object"}}`
	for _, tc := range []struct {
		name, entry string
		open        bool
	}{
		{"open app with odd children", `{"status":"on","operations":` + children + `}`, true},
		{"closed app with odd children", `{"status":"off","operations":` + children + `}`, false},
		{"children not an object", `{"status":"on","operations":["x"]}`, true},
		{"children a string", `{"status":"off","operations":"none"}`, false},
		{"children null", `{"status":"on","operations":null}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"data":{"operations":{"` + testApp + `":` + tc.entry + `}}}`
			a, err := decodeEnvelope([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			st, err := decodeStatus(a.data, testApp)
			if err != nil {
				t.Fatalf("an odd child failed the decision: %v", err)
			}
			if st.Open != tc.open {
				t.Fatalf("Open = %v, want %v", st.Open, tc.open)
			}
		})
	}
	a, _ := decodeEnvelope([]byte(`{"data":{"operations":{"` + testApp + `":{"status":"on","operations":` + children + `}}}}`))
	st, err := decodeStatus(a.data, testApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Operations) != 3 || st.Operations["GOOD1"].Open || !st.Operations["GOOD2"].Open || !st.Operations["NESTEDODD"].Open {
		t.Fatalf("children kept: %+v", st.Operations)
	}
	if g := st.Operations["GOOD2"].Operations; len(g) != 1 || !g["GRAND"].Open {
		t.Fatalf("grandchildren kept: %+v", g)
	}
	// The entry asked for is still read strictly, children or not.
	for _, entry := range []string{`{"operations":{"C":{"status":"on"}}}`, `{"status":"maybe","operations":{"C":{"status":"on"}}}`} {
		a, _ := decodeEnvelope([]byte(`{"data":{"operations":{"` + testApp + `":` + entry + `}}}`))
		if st, err := decodeStatus(a.data, testApp); !errors.Is(err, ErrMalformed) || st.Open {
			t.Errorf("entry %s: %+v, %v; want malformed", entry, st, err)
		}
	}
	// A child answered for the id asked, under another entry, is not the entry.
	a, _ = decodeEnvelope([]byte(`{"data":{"operations":{"OTHER":{"status":"off","operations":{"` + testApp + `":{"status":"on"}}}}}}`))
	if st, err := decodeStatus(a.data, testApp); !errors.Is(err, ErrMalformed) || st.Open {
		t.Errorf("a child with the asked id was taken for the entry: %+v, %v", st, err)
	}
}

func TestErrorMessageIsCleaned(t *testing.T) {
	_, err := decodeEnvelope([]byte(`{"error":{"code":102,"message":"bad\u001b[31m sig\nnext"}}`))
	var le *Error
	if !errors.As(err, &le) {
		t.Fatalf("err = %v", err)
	}
	if strings.ContainsAny(le.Message, "\x1b\n") || strings.ContainsAny(err.Error(), "\x1b\n") {
		t.Fatalf("control characters survived: %q", le.Message)
	}
	if !IsCredentials(err) || IsClock(err) || IsNotPaired(err) || IsOperationNotFound(err) {
		t.Fatal("102 classified wrongly")
	}
}

func TestErrorHelpers(t *testing.T) {
	for code, want := range map[int]string{101: "cred", 102: "cred", 103: "cred", 104: "cred", 105: "cred", 108: "cred", 110: "cred", 109: "clock", 201: "unpaired", 301: "notfound", 202: "", 501: "", 701: ""} {
		err := error(&Error{Code: code})
		got := ""
		switch {
		case IsCredentials(err):
			got = "cred"
		case IsClock(err):
			got = "clock"
		case IsNotPaired(err):
			got = "unpaired"
		case IsOperationNotFound(err):
			got = "notfound"
		}
		if got != want {
			t.Errorf("code %d classified %q, want %q", code, got, want)
		}
	}
	if ErrorCode(errors.New("x")) != 0 {
		t.Error("plain error has a code")
	}
}

// FuzzDecodeStatus feeds arbitrary answers to the decoder: it must never
// panic, and it may only report an open latch for a body that really holds
// "on" for the id asked.
func FuzzDecodeStatus(f *testing.F) {
	f.Add([]byte(`{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on"}}}}`))
	f.Add([]byte(`{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on","two_factor":{"token":"g2sEXg","generated":1}}}}}`))
	f.Add([]byte(`{"error":{"code":201,"message":"no"},"data":{}}`))
	f.Add([]byte(`{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"off","operations":{"A":{"status":"on"}}}}}}`))
	f.Add([]byte(`{}`))
	// Issue 13, point 1: children in odd shapes never decide.
	f.Add([]byte(`{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"off","operations":{"A":{"name":"x"},"B":{"status":"maybe"},"C":"on","D":null}}}}}`))
	f.Add([]byte(`{"data":{"operations":{"EXAMPLEAPPID00000000":{"status":"on","operations":{"A":{"status":"on","operations":{"EXAMPLEAPPID00000000":{"status":"off"}}}}}}}}`))
	f.Add([]byte(`{"data":{"operations":{"X":{"status":"off","operations":{"EXAMPLEAPPID00000000":{"status":"on"}}}}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := decodeEnvelope(body)
		if err != nil {
			return
		}
		st, err := decodeStatus(a.data, testApp)
		if err != nil {
			if st.Open {
				t.Fatal("error with Open")
			}
			return
		}
		// Cross-check with a generic decode (maps match names exactly):
		// "on" must really be there, under exactly data.operations[id].
		var generic map[string]any
		if json.Unmarshal(body, &generic) != nil {
			t.Fatalf("accepted a body encoding/json rejects: %q", body)
		}
		status := dig(generic, "data", "operations", testApp, "status")
		if st.Open != (status == "on") {
			t.Fatalf("Open = %v disagrees with the body %q", st.Open, body)
		}
		if st.TwoFactor != nil && !idPattern.MatchString(st.TwoFactor.Token) {
			t.Fatalf("bad token accepted: %q", st.TwoFactor.Token)
		}
	})
}

// dig follows object members by exact name and returns what it finds, or nil.
func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}
