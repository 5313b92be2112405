package users

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInspectAgreesWithLoad (issue 13, point 5): Inspect, which
// check-config uses to report everything at once, finds a problem exactly
// when Load refuses the file, so check-config never calls OK a file the
// gate refuses, nor the other way round.
func TestInspectAgreesWithLoad(t *testing.T) {
	dir := safeDir(t)
	secretFile := writeFile(t, filepath.Join(dir, "secret"), testSecret+"\n", 0o600)
	looseSecret := writeFile(t, filepath.Join(dir, "loose-secret"), testSecret+"\n", 0o644)
	shortSecret := writeFile(t, filepath.Join(dir, "short-secret"), "abc\n", 0o600)
	ca := writeFile(t, filepath.Join(dir, "ca.pem"), "roots\n", 0o644)
	looseCA := writeFile(t, filepath.Join(dir, "loose-ca.pem"), "roots\n", 0o666)
	withFile := func(key, path string) string {
		return strings.Replace(validConfig, `secret = "`+testSecret+`"`, key+` = "`+path+`"`, 1)
	}
	withCA := func(path string) string {
		return strings.Replace(validConfig, "[policy]", `ca_file = "`+path+`"`+"\n\n[policy]", 1)
	}
	for _, tc := range []struct {
		name, text string
		mode       os.FileMode
		ok         bool
	}{
		{"valid", validConfig, 0o600, true},
		{"valid, secret in a file", withFile("secret_file", secretFile), 0o644, true},
		{"readable secret", validConfig, 0o644, false},
		{"group-writable", withFile("secret_file", secretFile), 0o664, false},
		{"bad value", strings.Replace(validConfig, testAppID, "short", 1), 0o600, false},
		{"not TOML", "[latch\n", 0o600, false},
		{"secret_file missing", withFile("secret_file", filepath.Join(dir, "nope")), 0o600, false},
		{"secret_file readable", withFile("secret_file", looseSecret), 0o600, false},
		{"secret_file short", withFile("secret_file", shortSecret), 0o600, false},
		{"ca_file", withCA(ca), 0o600, true},
		{"ca_file writable", withCA(looseCA), 0o600, false},
		{"ca_file missing", withCA(filepath.Join(dir, "nope.pem")), 0o600, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(dir, "latch.toml"), tc.text, tc.mode)
			_, loadErr := Load(path)
			in := Inspect(path)
			if (loadErr == nil) != tc.ok || (len(in.Problems) == 0 && in.Err == nil) != tc.ok {
				t.Fatalf("Load: %v; Inspect: problems %v, err %v; want ok=%v", loadErr, in.Problems, in.Err, tc.ok)
			}
			for _, p := range in.Problems {
				if p.File == "" || p.Fix == "" {
					t.Errorf("problem without a file or a fix: %+v", p)
				}
				if strings.Contains(p.Error(), testSecret) {
					t.Errorf("the secret is shown: %v", p)
				}
			}
			if tc.text != "[latch\n" && in.Config == nil {
				t.Errorf("nothing parsed to check further")
			}
		})
	}
	if in := Inspect(filepath.Join(dir, "missing.toml")); !errors.Is(in.Err, os.ErrNotExist) || len(in.Problems) != 0 {
		t.Errorf("a missing file: %+v", in)
	}
}

// TestInspectEverythingAtOnce (issue 13, point 5): a file others can read,
// with a bad value and a secret_file that is not there, gets all three
// problems in one Inspect, the ones in the file at their lines; and what
// did parse is there to check further ([users]).
func TestInspectEverythingAtOnce(t *testing.T) {
	dir := safeDir(t)
	text := strings.Replace(validConfig, testAppID, "short", 1)
	text = strings.Replace(text, `secret = "`+testSecret+`"`, `secret_file = "`+filepath.Join(dir, "nope")+`"`, 1)
	text += "bob = \"" + strings.Repeat("b", 64) + "\"\n"
	path := writeFile(t, filepath.Join(dir, "latch.toml"), text, 0o666)
	in := Inspect(path)
	var got []string
	for _, p := range in.Problems {
		got = append(got, p.Error())
	}
	want := []string{path + ": is writable by group and others", path + ":2: latch.app_id: ", path + ":3: latch.secret_file: "}
	if len(got) != len(want) {
		t.Fatalf("problems:\n%s\nwant %d", strings.Join(got, "\n"), len(want))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("problem %d: %q, want it to start with %q", i, got[i], want[i])
		}
	}
	if in.Config == nil || in.Config.Users["bob"] == "" || in.Line("users", "bob") != 13 {
		t.Errorf("what parsed: %+v, bob at line %d", in.Config, in.Line("users", "bob"))
	}
}
