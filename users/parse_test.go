package users

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
)

func TestParseValid(t *testing.T) {
	text := validConfig + `
[user_operations.alice]
sshd = "AAAAAAAAAAAAAAAAAAAA"

[daemon]
rate_limit = 50

[server]
listen = "127.0.0.1:0"
recheck = "0"
login_grace_time = "1m30s"

[metrics]
listen = "[::1]:9469"
textfile = "/var/lib/prometheus/node-exporter/latch_ssh.prom"
`
	cfg, err := Parse("latch.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"app id", cfg.Latch.AppID, testAppID},
		{"secret", cfg.Secret(), testSecret},
		{"api url default", cfg.Latch.APIURL, DefaultAPIURL},
		{"api version default", cfg.Latch.APIVersion, "3.0"},
		{"timeout default", cfg.Latch.Timeout.Duration, DefaultTimeout},
		{"fail mode", cfg.Policy.FailMode, FailClosed},
		{"unpaired default", cfg.Policy.Unpaired, UnpairedAllow},
		{"otp default", cfg.Policy.OTP, OTPPrompt},
		{"end default", cfg.Policy.End, EndSession},
		{"pair common name default", cfg.Policy.PairCommonName, true},
		{"exempt groups default", cfg.Policy.ExemptGroups, []string{}},
		{"socket default", cfg.Daemon.Socket, DefaultSocket},
		{"rate limit", cfg.Daemon.RateLimit, 50},
		{"listen", cfg.Server.Listen, "127.0.0.1:0"},
		{"metrics listen", cfg.Metrics.Listen, "[::1]:9469"},
		{"metrics textfile", cfg.Metrics.Textfile, "/var/lib/prometheus/node-exporter/latch_ssh.prom"},
		{"host key default", cfg.Server.HostKey, []string{"/etc/latch-ssh/ssh_host_ed25519_key"}},
		{"authorized keys default", cfg.Server.AuthorizedKeys, "%h/.ssh/authorized_keys"},
		{"recheck off", cfg.Server.Recheck.Duration, time.Duration(0)},
		{"login grace", cfg.Server.LoginGraceTime.Duration, 90 * time.Second},
		{"handshake default", cfg.Server.HandshakeTimeout.Duration, 20 * time.Second},
		{"max auth tries default", cfg.Server.MaxAuthTries, 6},
		{"max unauthenticated default", cfg.Server.MaxUnauthenticated, 100},
		{"operation override", cfg.Operation("alice", "sshd"), "AAAAAAAAAAAAAAAAAAAA"},
		{"operation", cfg.Operation("bob", "sshd"), testOp},
		{"no operation", cfg.Operation("alice", "sudo"), ""},
		{"path", cfg.Path, "latch.toml"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	if acct, ok := cfg.Account("alice"); !ok || acct != acctAlice {
		t.Errorf("Account(alice) = %q, %v", acct, ok)
	}
	if _, ok := cfg.Account("bob"); ok {
		t.Error("Account(bob) found an account")
	}
}

func TestUsersOfAccount(t *testing.T) {
	cfg := &Config{Users: map[string]string{"carol": acctAlice, "alice": acctAlice, "bob": acctBob}}
	if got := cfg.UsersOfAccount(acctAlice); !reflect.DeepEqual(got, []string{"alice", "carol"}) {
		t.Errorf("UsersOfAccount = %v", got)
	}
	if got := cfg.UsersOfAccount(acctDave); got != nil {
		t.Errorf("UsersOfAccount(unmapped) = %v", got)
	}
}

func TestParseNormalisesAPIURL(t *testing.T) {
	text := strings.Replace(validConfig, "[policy]", "api_url = \"https://latch.example:8443/\"\n\n[policy]", 1)
	cfg, err := Parse("latch.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Latch.APIURL != "https://latch.example:8443" {
		t.Errorf("APIURL = %q", cfg.Latch.APIURL)
	}
}

// want is one expected problem: its line, key and part of its message.
type want struct {
	line int
	key  string
	msg  string
}

func TestParseProblems(t *testing.T) {
	secret39 := testSecret[:39]
	cases := []struct {
		name     string
		old, new string // applied to validConfig
		want     []want
	}{
		{"syntax error", `fail_mode = "closed"`, `fail_mode = "closed`,
			[]want{{6, "", "TOML syntax error"}}},
		{"unknown table", "[users]", "[polcy]\nx = 1\n\n[users]",
			[]want{{11, "polcy", "unknown table [polcy]; did you mean [policy]?"}}},
		{"unknown key in policy", `fail_mode = "closed"`, `fail_mode = "closed"` + "\nfail_mod = \"open\"",
			[]want{{7, "policy.fail_mod", `unknown key "fail_mod" in [policy]; did you mean "fail_mode"?`}}},
		{"typo of a required key", `fail_mode = "closed"`, `fail_mod = "closed"`,
			[]want{{5, "policy.fail_mode", "is required"}, {6, "policy.fail_mod", `did you mean "fail_mode"?`}}},
		{"unknown top-level key", "[latch]", "verbose = true\n[latch]",
			[]want{{1, "verbose", `unknown key "verbose" at the top level`}}},
		{"key outside its table", "[latch]", "fail_mode = \"closed\"\n[latch]",
			[]want{{1, "fail_mode", `"fail_mode" belongs in [policy]`}}},
		{"wrong type bool", `fail_mode = "closed"`, `fail_mode = "closed"` + "\nsilent = \"yes\"",
			[]want{{7, "policy.silent", "must be true or false, not a string"}}},
		{"wrong type duration", "[policy]", "timeout = 3\n\n[policy]",
			[]want{{5, "latch.timeout", `must be a duration in quotes, like "3s", not a whole number`}}},
		{"wrong type table", "[latch]", "daemon = 3\n[latch]",
			[]want{{1, "daemon", "must be a table, not a whole number"}}},
		{"app_id length", testAppID, "short",
			[]want{{2, "latch.app_id", `must be exactly 20 letters and digits, not "short" (5 characters)`}}},
		{"app_id placeholder", testAppID, "REPLACE_WITH_APP_ID_",
			[]want{{2, "latch.app_id", "app_id is still the placeholder: put your Latch application id from the Latch developer area here"}}},
		{"secret length", testSecret, secret39,
			[]want{{3, "latch.secret", "this one has 39 characters"}}},
		{"secret characters", testSecret, testSecret[:39] + "!",
			[]want{{3, "latch.secret", "this one has other characters"}}},
		{"secret and secret_file", "\n[policy]", "secret_file = \"/etc/latch-ssh/secret\"\n\n[policy]",
			[]want{{3, "latch.secret", "both secret and secret_file are set"}}},
		{"no secret", `secret = "` + testSecret + `"` + "\n", "",
			[]want{{1, "latch.secret", "the application secret is missing"}}},
		{"relative secret_file", `secret = "` + testSecret + `"`, `secret_file = "secret"`,
			[]want{{3, "latch.secret_file", `"secret" is not an absolute path`}}},
		{"no app_id", `app_id = "` + testAppID + `"` + "\n", "",
			[]want{{1, "latch.app_id", "the Latch application id is missing"}}},
		{"missing fail_mode", `fail_mode = "closed"`, "",
			[]want{{5, "policy.fail_mode", "is required"}}},
		{"missing policy table", "[policy]\nfail_mode = \"closed\"\n", "",
			[]want{{0, "policy.fail_mode", "is required"}}},
		{"bad enum", `"closed"`, `"clsoed"`,
			[]want{{6, "policy.fail_mode", `must be "open" or "closed", not "clsoed"`}}},
		{"bad otp", `fail_mode = "closed"`, `fail_mode = "closed"` + "\notp = \"always\"",
			[]want{{7, "policy.otp", `must be "prompt" or "never", not "always"`}}},
		{"bad duration", "\n[policy]", "timeout = \"3\"\n\n[policy]",
			[]want{{4, "latch.timeout", `"3" is not a duration`}}},
		{"timeout out of range", "\n[policy]", "timeout = \"90s\"\n\n[policy]",
			[]want{{4, "latch.timeout", `"90s" is out of range 100ms..1m`}}},
		{"bad user name", "alice =", `"bad user" =`,
			[]want{{12, `users."bad user"`, `"bad user" is not a valid user name`}}},
		{"user name with $", "alice =", `"host$" =`,
			[]want{{12, `users."host$"`, `"host$" is not a valid user name`}}},
		{"bad account id", acctAlice, "tooshort",
			[]want{{12, "users.alice", "must be exactly 64 letters and digits"}}},
		{"user_operations for unknown user", "[users]", "[user_operations.bob]\nsshd = \"" + testOp + "\"\n\n[users]",
			[]want{{11, "user_operations.bob", `"bob" is not in [users]`}}},
		{"bad operation id", `sshd = "` + testOp + `"`, `sshd = "nope"`,
			[]want{{9, "operations.sshd", "must be exactly 20 letters and digits"}}},
		{"bad service name", `sshd = "`, `"ss hd" = "`,
			[]want{{9, `operations."ss hd"`, "not a valid service name"}}},
		{"bad api_url", "\n[policy]", "api_url = \"not a url\"\n\n[policy]",
			[]want{{4, "latch.api_url", "is not a URL like https://latch.tu.com"}}},
		{"http api_url", "\n[policy]", "api_url = \"http://latch.tu.com\"\n\n[policy]",
			[]want{{4, "latch.api_url", "must use https://"}}},
		{"api_url with path", "\n[policy]", "api_url = \"https://latch.tu.com/api\"\n\n[policy]",
			[]want{{4, "latch.api_url", "no user, path or query"}}},
		{"bad api_version", "\n[policy]", "api_version = \"3\"\n\n[policy]",
			[]want{{4, "latch.api_version", `"3" is not an API version`}}},
		{"bad proxy", "\n[policy]", "proxy = \"socks5://u:pw@proxy:1080\"\n\n[policy]",
			[]want{{4, "latch.proxy", "is not a proxy URL"}}},
		{"relative ca_file", "\n[policy]", "ca_file = \"ca.pem\"\n\n[policy]",
			[]want{{4, "latch.ca_file", "is not an absolute path"}}},
		{"bad group", `fail_mode = "closed"`, `fail_mode = "closed"` + "\nexempt_groups = [\"wheel\", \"-x\"]",
			[]want{{7, "policy.exempt_groups", `"-x" is not a valid group name`}}},
		{"bad end", `fail_mode = "closed"`, `fail_mode = "closed"` + "\nend = \"all\"",
			[]want{{7, "policy.end", `must be "session" or "user"`}}},
		{"groups not strings", `fail_mode = "closed"`, `fail_mode = "closed"` + "\nexempt_groups = [1]",
			[]want{{7, "policy.exempt_groups", "must hold only strings, not a whole number"}}},
		{"rate limit range", "[users]", "[daemon]\nrate_limit = 0\n\n[users]",
			[]want{{12, "daemon.rate_limit", "0 is out of range 1..10000"}}},
		{"bad listen", "[users]", "[server]\nlisten = \"2222\"\n\n[users]",
			[]want{{12, "server.listen", `"2222" is not host:port`}}},
		{"bad authorized_keys", "[users]", "[server]\nauthorized_keys = \"%d/keys\"\n\n[users]",
			[]want{{12, "server.authorized_keys", "unknown %-token"}}},
		{"recheck below range", "[users]", "[server]\nrecheck = \"10ms\"\n\n[users]",
			[]want{{12, "server.recheck", `or "0" for off`}}},
		{"host_key relative", "[users]", "[server]\nhost_key = [\n  \"/ok\",\n  \"key\",\n]\n\n[users]",
			[]want{{12, "server.host_key", `"key" is not an absolute path`}}},
		{"unknown key after multi-line array", "[users]", "[server]\nhost_key = [\n  \"/a\", # [x]\n]\nlisen = \"\"\n\n[users]",
			[]want{{15, "server.lisen", `did you mean "listen"?`}}},
		{"unknown key in inline table", "[latch]", "server = { listen = \"\", oops = 1 }\n[latch]",
			[]want{{1, "server.oops", `unknown key "oops" in [server]`}}},
		{"metrics listen not host:port", "[users]", "[metrics]\nlisten = \"9469\"\n\n[users]",
			[]want{{12, "metrics.listen", `"9469" is not host:port with a port from 1 to 65535`}}},
		{"metrics listen port 0", "[users]", "[metrics]\nlisten = \"127.0.0.1:0\"\n\n[users]",
			[]want{{12, "metrics.listen", `is not host:port with a port from 1 to 65535`}}},
		{"metrics listen no host", "[users]", "[metrics]\nlisten = \":9469\"\n\n[users]",
			[]want{{12, "metrics.listen", `has no host`}}},
		{"metrics textfile relative", "[users]", "[metrics]\ntextfile = \"latch.prom\"\n\n[users]",
			[]want{{12, "metrics.textfile", `"latch.prom" is not an absolute path`}}},
		{"metrics textfile not .prom", "[users]", "[metrics]\ntextfile = \"/var/lib/node/latch.txt\"\n\n[users]",
			[]want{{12, "metrics.textfile", `whose name ends in .prom`}}},
		{"metrics textfile a directory", "[users]", "[metrics]\ntextfile = \"/var/lib/node/x.prom/\"\n\n[users]",
			[]want{{12, "metrics.textfile", `whose name ends in .prom`}}},
		{"metrics unknown key", "[users]", "[metrics]\nlisten = \"127.0.0.1:9469\"\nport = 1\n\n[users]",
			[]want{{13, "metrics.port", `unknown key "port" in [metrics]`}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(validConfig, c.old) {
				t.Fatalf("test bug: %q not in validConfig", c.old)
			}
			text := strings.Replace(validConfig, c.old, c.new, 1)
			_, err := Parse("latch.toml", []byte(text))
			checkProblems(t, err, c.want)
			if strings.Contains(err.Error(), testSecret[:20]) {
				t.Errorf("the secret leaked: %v", err)
			}
		})
	}
}

// checkProblems asserts err is exactly the wanted problems, each with a fix.
func checkProblems(t *testing.T, err error, wants []want) {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T) is not Problems", err, err)
	}
	if len(ps) != len(wants) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(wants), err)
	}
	for _, w := range wants {
		found := false
		for _, p := range ps {
			found = found || p.Line == w.line && p.Key == w.key && strings.Contains(p.Message, w.msg)
		}
		if !found {
			t.Errorf("no problem at line %d, key %q, containing %q in:\n%v", w.line, w.key, w.msg, err)
		}
	}
	for _, p := range ps {
		if p.Fix == "" {
			t.Errorf("problem without a fix: %v", p)
		}
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	text := `[latch]
app_id = "short"
secret = "` + testSecret[:39] + `"
timeout = "forever"

[policy]
fail_mode = "sometimes"
otp = "prompt"
unpaird = "deny"

[users]
alice = "x"
"b c" = "` + acctBob + `"
`
	_, err := Parse("latch.toml", []byte(text))
	checkProblems(t, err, []want{
		{2, "latch.app_id", "20 letters"},
		{3, "latch.secret", "39 characters"},
		{4, "latch.timeout", "not a duration"},
		{7, "policy.fail_mode", "not \"sometimes\""},
		{9, "policy.unpaird", `did you mean "unpaired"?`},
		{12, "users.alice", "64 letters"},
		{13, `users."b c"`, "not a valid user name"},
	})
	var ps Problems
	errors.As(err, &ps)
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems not in line order: %v", err)
		}
	}
}

func TestProblemFormat(t *testing.T) {
	cases := []struct {
		p    Problem
		want string
	}{
		{Problem{"/etc/latch-ssh/latch.toml", 6, "policy.fail_mode", "is required", "add it"},
			"/etc/latch-ssh/latch.toml:6: policy.fail_mode: is required (fix: add it)"},
		{Problem{File: "f.toml", Key: "policy.fail_mode", Message: "is required"}, "f.toml: policy.fail_mode: is required"},
		{Problem{File: "f.toml", Line: 2, Message: "TOML syntax error"}, "f.toml:2: TOML syntax error"},
		{Problem{Line: 2, Key: "users.bob", Message: "bad"}, "line 2: users.bob: bad"},
	}
	for _, c := range cases {
		if got := c.p.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
	if got := (Problems{cases[0].p, cases[1].p}).Error(); got != cases[0].want+"\n"+cases[1].want {
		t.Errorf("Problems.Error() = %q", got)
	}
}

// TestSecretNeverInErrors breaks the secret in every way that reaches an
// error message, including syntax errors whose decoder messages quote the
// value.
func TestSecretNeverInErrors(t *testing.T) {
	const canary = "ZqXjLeakCanary" // a prefix of testSecret
	cases := []struct {
		name, line string
		rawLeaks   bool // the decoder's own message would show it
	}{
		{"too short", `secret = "` + testSecret[:39] + `"`, false},
		{"too long", `secret = "` + testSecret + `x"`, false},
		{"space", `secret = "` + testSecret[:20] + " " + testSecret[21:] + `"`, false},
		{"bad escape", `secret = "` + testSecret + `\uZZZZ"`, true},
		{"unquoted", `secret = ` + testSecret, true},
		{"unterminated", `secret = "` + testSecret, false},
		{"bad hex in inline table", `latch = { secret = "` + testSecret + `\xZZ" }`, true},
		{"multi-line", "secret = \"\"\"" + testSecret + `\uZZZZ` + "\n\"\"\"", true},
		{"in the wrong table", "[policy]\nsecret = \"" + testSecret + "\"", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(validConfig, `secret = "`+testSecret+`"`, c.line, 1)
			_, err := Parse("latch.toml", []byte(text))
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), canary) {
				t.Errorf("the secret leaked: %v", err)
			}
			// Make sure the test can fail: the raw decoder message shows it.
			var raw map[string]any
			_, rawErr := toml.Decode(text, &raw)
			if c.rawLeaks && (rawErr == nil || !strings.Contains(rawErr.Error(), canary)) {
				t.Errorf("expected the decoder's own error to show the secret; got %v", rawErr)
			}
		})
	}
}

func TestSecretRedacted(t *testing.T) {
	cfg, err := Parse("latch.toml", []byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, v := range []any{cfg, *cfg, cfg.Latch, cfg.Latch.Secret} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, string(j))
	}
	outs = append(outs, cfg.Latch.Secret.String(), cfg.Latch.Secret.GoString(), fmt.Sprint(cfg.Latch.Secret))
	for _, o := range outs {
		if strings.Contains(o, testSecret) || strings.Contains(strings.ToLower(o), strings.ToLower(fmt.Sprintf("%x", testSecret[:8]))) {
			t.Errorf("secret shown: %s", o)
		}
	}
	if s := fmt.Sprint(cfg.Latch.Secret); s != "[redacted]" {
		t.Errorf("Sprint(secret) = %q", s)
	}
	if cfg.Secret() != testSecret {
		t.Error("Secret() does not return the secret")
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.Duration != 90*time.Second {
		t.Errorf("UnmarshalText(1m30s) = %v, %v", d, err)
	}
	if err := d.UnmarshalText([]byte("3")); err == nil {
		t.Error("UnmarshalText(3) accepted a duration without a unit")
	}
	if b, _ := d.MarshalText(); string(b) != "1m30s" {
		t.Errorf("MarshalText = %s", b)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"fail_mode", "unpaired", "exempt_groups", "otp"}
	for in, want := range map[string]string{"fail_mod": "fail_mode", "failmode": "fail_mode", "unpairde": "unpaired", "opt": "otp", "zzz": "", "exempt": ""} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestExample checks the shipped example: it fails exactly on its
// placeholders, each with a "still the placeholder" message, and parses
// once they are filled in.
func TestExample(t *testing.T) {
	data, err := os.ReadFile("../latch.toml.example")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse("latch.toml.example", data)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("example: %v", err)
	}
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key)
		if !strings.Contains(p.Message, "is still the placeholder") {
			t.Errorf("not a placeholder problem: %v", p)
		}
	}
	if want := []string{"latch.app_id", "latch.secret", "policy.fail_mode"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("problem keys %v, want %v", keys, want)
	}
	filled := strings.NewReplacer(
		`"REPLACE_WITH_APP_ID_"`, `"`+testAppID+`"`,
		`"REPLACE_WITH_THE_APPLICATION_SECRET_____"`, `"`+testSecret+`"`,
		`"REPLACE_WITH_open_OR_closed"`, `"closed"`,
	).Replace(string(data))
	cfg, err := Parse("latch.toml", []byte(filled))
	if err != nil {
		t.Fatalf("filled-in example: %v", err)
	}
	if cfg.Secret() != testSecret || cfg.Policy.FailMode != FailClosed {
		t.Error("filled-in example did not take the values")
	}
	// Every key is documented, as a setting or a commented-out default.
	for _, k := range []string{"app_id", "secret", "secret_file", "api_url", "api_version", "timeout", "ca_file", "proxy",
		"fail_mode", "unpaired", "exempt_groups", "otp", "silent", "allow_self_pairing", "pair_common_name", "end =",
		"[operations]", "[user_operations.", "[users]", "[daemon]", "socket", "rate_limit", "[server]", "listen", "host_key",
		"authorized_keys", "recheck", "allow_tcp_forwarding", "login_grace_time", "max_auth_tries", "max_unauthenticated",
		"handshake_timeout", "sftp_server", "max_unauthenticated_per_source", "early_drop_start", "early_drop_rate",
		"penalty_noauth", "penalty_authfail", "penalty_timeout", "penalty_min", "penalty_max", "penalty_max_sources",
		"penalty_overflow", "penalty_exempt", "[metrics]", "textfile"} {
		if !strings.Contains(string(data), k) {
			t.Errorf("the example does not mention %s", k)
		}
	}
}
