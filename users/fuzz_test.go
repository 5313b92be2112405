package users

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// addSeeds adds the example, validConfig, its broken variants and the
// golden edit inputs.
func addSeeds(f *testing.F, add func(data []byte)) {
	add([]byte(validConfig))
	if ex, err := os.ReadFile("../latch.toml.example"); err == nil {
		add(ex)
	}
	for _, broken := range []string{
		strings.Replace(validConfig, `"closed"`, `"closed`, 1),
		strings.Replace(validConfig, "[users]", "[users]\n'bad user' = 1\n[user_operations.bob]\nsshd = 3", 1),
		strings.Replace(validConfig, `secret = "`, `secret = """`, 1),
		validConfig + "[server]\nhost_key = [\n\"a\", # ]\n]\nrecheck = \"0\"\n",
		"latch = {app_id = \"x\", secret = \"\\uZZ\"}",
		"[a]\r\nb = '''\r\n[users]\r\n'''\r\n",
		// Issue 17: instances on, a user line with instances.
		strings.Replace(validConfig, "[policy]", "instance = \"host\"\ninstance_name = \"ssh %h\"\n[policy]", 1) +
			"\n[instances]\nalice = { app = \"I1\", " + testOp + " = \"I2\" }\n",
	} {
		add([]byte(broken))
	}
	files, _ := filepath.Glob("testdata/edit/*.toml")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			add(data)
		}
	}
}

// FuzzParse: Parse never panics, reports problems as Problems with lines
// inside the file, and a config it accepts meets every documented rule.
func FuzzParse(f *testing.F) {
	addSeeds(f, func(data []byte) { f.Add(data) })
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.toml", data)
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %v is not a non-empty Problems", err)
			}
			lines := bytes.Count(data, []byte("\n")) + 1
			for _, p := range ps {
				if p.Line < 0 || p.Line > lines {
					t.Errorf("line %d outside a %d-line file: %v", p.Line, lines, p)
				}
			}
			// A secret that decodes and appears once in the input (so no
			// other value or key echoes it) must not be shown.
			if raw, derr := decodeRaw(data); derr == nil {
				latch, _ := raw["latch"].(map[string]any)
				if s, _ := latch["secret"].(string); len(s) >= 16 && bytes.Count(data, []byte(s)) == 1 && strings.Contains(err.Error(), s) {
					t.Errorf("the secret is shown: %v", err)
				}
			}
			return
		}
		checkInvariants(t, cfg)
	})
}

func checkInvariants(t *testing.T, cfg *Config) {
	t.Helper()
	l, p, s := cfg.Latch, cfg.Policy, cfg.Server
	between := func(d Duration, lo, hi time.Duration) bool { return d.Duration >= lo && d.Duration <= hi }
	rules := []struct {
		ok   bool
		rule string
	}{
		{isID(l.AppID, 20), "app_id is 20 letters and digits"},
		{isID(cfg.Secret(), 40) != (l.SecretFile != ""), "exactly one of a valid secret and secret_file"},
		{l.SecretFile == "" || filepath.IsAbs(l.SecretFile), "secret_file is absolute"},
		{strings.HasPrefix(l.APIURL, "https://") && !strings.HasSuffix(l.APIURL, "/"), "api_url is https, no trailing slash"},
		{versionPattern.MatchString(l.APIVersion), "api_version is N.N"},
		{between(l.Timeout, 100*time.Millisecond, time.Minute), "timeout in range"},
		{p.FailMode == FailOpen || p.FailMode == FailClosed, "fail_mode set"},
		{p.Unpaired == UnpairedAllow || p.Unpaired == UnpairedDeny, "unpaired valid"},
		{p.OTP == OTPPrompt || p.OTP == OTPNever, "otp valid"},
		{cfg.Daemon.RateLimit >= 1 && cfg.Daemon.RateLimit <= 10000, "rate_limit in range"},
		{filepath.IsAbs(cfg.Daemon.Socket), "socket absolute"},
		{s.Listen == "" || len(s.HostKey) > 0, "host keys when listening"},
		{s.MaxAuthTries >= 1 && s.MaxAuthTries <= 100, "max_auth_tries in range"},
		{s.Recheck.Duration == 0 || between(s.Recheck, time.Second, 24*time.Hour), "recheck in range"},
	}
	for _, r := range rules {
		if !r.ok {
			t.Errorf("accepted config breaks %q: %+v", r.rule, cfg)
		}
	}
	for _, g := range p.ExemptGroups {
		if !namePattern.MatchString(g) {
			t.Errorf("bad group %q accepted", g)
		}
	}
	for u, a := range cfg.Users {
		if !namePattern.MatchString(u) || !isID(a, 64) {
			t.Errorf("bad user %q = %q accepted", u, a)
		}
	}
	for u, ops := range cfg.UserOperations {
		if _, ok := cfg.Users[u]; !ok {
			t.Errorf("user_operations for unknown user %q accepted", u)
		}
		for _, op := range ops {
			if !isID(op, 20) {
				t.Errorf("bad operation %q accepted", op)
			}
		}
	}
	for _, op := range cfg.Operations {
		if !isID(op, 20) {
			t.Errorf("bad operation %q accepted", op)
		}
	}
}

// FuzzSetUser: when editUsers accepts an edit, the result decodes to the
// old document with exactly that change, a valid config stays valid with
// only Users changed, and the bytes change on one line (or by appending a
// [users] table) only.
func FuzzSetUser(f *testing.F) {
	addSeeds(f, func(data []byte) {
		f.Add(data, "alice", false)
		f.Add(data, "dave", false)
		f.Add(data, "john.doe", false)
		f.Add(data, "bob", true)
	})
	f.Fuzz(func(t *testing.T, data []byte, user string, remove bool) {
		account := acctErin
		if remove {
			account = ""
		}
		out, err := editUsers(data, user, account, remove)
		if err != nil {
			return
		}
		before, _ := decodeRaw(data)
		after, err := decodeRaw(out)
		if err != nil {
			t.Fatalf("output does not decode: %v\n%s", err, out)
		}
		users, _ := before["users"].(map[string]any)
		if users == nil {
			users = map[string]any{}
			before["users"] = users
		}
		if remove {
			delete(users, user)
		} else {
			users[user] = account
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("documents differ beyond %s:\n%s\n---\n%s", user, data, out)
		}
		if oldCfg, err := Parse("f.toml", data); err == nil {
			newCfg, err := Parse("f.toml", out)
			if err != nil {
				t.Fatalf("a valid config became invalid: %v", err)
			}
			if remove {
				delete(oldCfg.Users, user)
			} else {
				oldCfg.Users[user] = account
			}
			// Lines move with the edit: every mapped user has a
			// source in the file, the rest must not change.
			for u := range newCfg.Users {
				if s := newCfg.UserSources[u]; s.File != "f.toml" || s.Line < 1 {
					t.Fatalf("user %s has source %v", u, s)
				}
			}
			oldCfg.UserSources = newCfg.UserSources
			oldCfg.InstanceSources = newCfg.InstanceSources
			if !reflect.DeepEqual(oldCfg, newCfg) {
				t.Fatalf("config changed beyond Users[%s]", user)
			}
		}
		checkLocalEdit(t, data, out)
	})
}

// checkLocalEdit asserts that out is data with one line replaced, inserted
// or removed, or with a [users] table appended (after a final newline if
// data lacked one).
func checkLocalEdit(t *testing.T, data, out []byte) {
	t.Helper()
	// Split, not SplitAfter: inserting after a last line without a line
	// ending gives that line one, which counts as no change.
	a, b := bytes.Split(data, []byte("\n")), bytes.Split(out, []byte("\n"))
	pre := 0
	for pre < len(a) && pre < len(b) && bytes.Equal(a[pre], b[pre]) {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && bytes.Equal(a[len(a)-1-suf], b[len(b)-1-suf]) {
		suf++
	}
	if len(a)-pre-suf <= 1 && len(b)-pre-suf <= 1 {
		return
	}
	if rest, ok := bytes.CutPrefix(out, data); !ok || !appendedUsers.Match(rest) {
		t.Fatalf("edit touched %d old and %d new lines:\n%q\n---\n%q", len(a)-pre-suf, len(b)-pre-suf, data, out)
	}
}

// appendedUsers is what an edit may append to a file with no [users].
var appendedUsers = regexp.MustCompile(`^(\r?\n){0,2}\[users\]\r?\n[^\r\n]* = "[A-Za-z0-9]{64}"\r?\n$`)
