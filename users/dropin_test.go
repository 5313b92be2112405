package users

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	testOpSudo = "SUDOtEkDnNfribxUdl7d"
	// mainConfig is latch.toml of the drop-in tests: line 6 is fail_mode,
	// line 9 [users], line 10 alice.
	mainConfig = `[latch]
app_id = "` + testAppID + `"
secret = "` + testSecret + `"

[policy]
fail_mode = "closed"
pairing_file = "latch.d/50-paired.toml"

[users]
alice = "` + acctAlice + `"
`
)

// dropInSetup writes latch.toml (mode 0600) and the drop-ins (name ->
// content, mode 0644) in a safe directory and returns latch.toml's path.
func dropInSetup(t *testing.T, main string, dropins map[string]string) string {
	t.Helper()
	dir := safeDir(t)
	path := writeFile(t, filepath.Join(dir, "latch.toml"), main, 0o600)
	if dropins != nil {
		mkdir(t, filepath.Join(dir, DropInDirName), 0o755)
	}
	for name, content := range dropins {
		writeFile(t, filepath.Join(dir, DropInDirName, name), content, 0o644)
	}
	return path
}

func TestDropInsMerge(t *testing.T) {
	path := dropInSetup(t, mainConfig, map[string]string{
		"10-ops.toml": "[operations]\nsshd = \"" + testOp + "\"\n\n[policy]\nunpaired = \"deny\"\n",
		"50-paired.toml": "# written by latch-ssh pair\n[users]\nbob = \"" + acctBob + "\"\n\n" +
			"[user_operations.bob]\nsudo = \"" + testOpSudo + "\"\n",
	})
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	d := filepath.Join(dir, DropInDirName)
	wantFiles := []string{path, filepath.Join(d, "10-ops.toml"), filepath.Join(d, "50-paired.toml")}
	if !slices.Equal(cfg.Files, wantFiles) {
		t.Errorf("Files = %q, want %q", cfg.Files, wantFiles)
	}
	if cfg.Users["alice"] != acctAlice || cfg.Users["bob"] != acctBob || len(cfg.Users) != 2 {
		t.Errorf("Users = %v", cfg.Users)
	}
	if cfg.Policy.FailMode != FailClosed || cfg.Policy.Unpaired != UnpairedDeny {
		t.Errorf("[policy] from two files: %+v", cfg.Policy)
	}
	if cfg.Operation("bob", "sudo") != testOpSudo || cfg.Operation("alice", "sshd") != testOp {
		t.Errorf("operations: bob/sudo %q, alice/sshd %q", cfg.Operation("bob", "sudo"), cfg.Operation("alice", "sshd"))
	}
	if got := cfg.UserSources["alice"]; got != (Source{path, 10}) {
		t.Errorf("alice's source = %v, want %s:10", got, path)
	}
	paired := filepath.Join(d, "50-paired.toml")
	if got := cfg.UserSources["bob"]; got != (Source{paired, 3}) {
		t.Errorf("bob's source = %v, want %s:3", got, paired)
	}
	if cfg.FileFor("alice") != path || cfg.FileFor("bob") != paired || cfg.FileFor("carol") != paired {
		t.Errorf("FileFor: alice %s, bob %s, carol %s", cfg.FileFor("alice"), cfg.FileFor("bob"), cfg.FileFor("carol"))
	}
}

// Everything may be set in a drop-in, required keys included: latch.toml
// may be nearly empty.
func TestDropInsHoldRequiredKeys(t *testing.T) {
	dir := safeDir(t)
	secretFile := writeFile(t, filepath.Join(dir, "secret"), "too short\n", 0o600)
	path := dropInSetup(t, "# managed elsewhere\n", map[string]string{
		"00-base.toml":   strings.Replace(mainConfig, `secret = "`+testSecret+`"`, `secret_file = "`+secretFile+`"`, 1),
		"01-secret.toml": "[latch]\napi_url = \"https://latch.example\"\n",
	})
	_, err := Load(path)
	// secret_file is read, so the error is about that file only: every
	// required key was found.
	if err == nil || !strings.Contains(err.Error(), "secret_file") || strings.Contains(err.Error(), "missing") {
		t.Fatalf("Load = %v, want only the secret_file error", err)
	}
	if !strings.Contains(err.Error(), "00-base.toml:3") {
		t.Errorf("the secret_file error is not located at 00-base.toml:3: %v", err)
	}
}

func TestDropInsOrderAndIgnoredNames(t *testing.T) {
	garbage := "this is [[not TOML\n"
	path := dropInSetup(t, mainConfig, map[string]string{
		"9-last.toml":             "[daemon]\nrate_limit = 20\n",
		"10-first.toml":           "[server]\nrecheck = \"1m\"\n",
		"50-x.toml~":              garbage,
		".#50-x.toml":             garbage,
		".hidden.toml":            garbage,
		"50-x.toml.dpkg-old":      garbage,
		"50-x.toml.dpkg-new":      garbage,
		"50-x.toml.dpkg-dist":     garbage,
		"50-x.toml.swp":           garbage,
		"50-x.conf":               garbage,
		".toml":                   garbage,
		"README":                  garbage,
		"60-disabled.toml.rpmnew": garbage,
	})
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("an ignored name was read: %v", err)
	}
	d := filepath.Join(filepath.Dir(path), DropInDirName)
	// Byte order: "10-" before "9-", as ls and the shell's *.toml sort.
	want := []string{path, filepath.Join(d, "10-first.toml"), filepath.Join(d, "9-last.toml")}
	if !slices.Equal(cfg.Files, want) {
		t.Errorf("Files = %q, want %q", cfg.Files, want)
	}
	if cfg.Daemon.RateLimit != 20 || cfg.Server.Recheck.Minutes() != 1 {
		t.Errorf("drop-in settings not applied: rate_limit %d, recheck %v", cfg.Daemon.RateLimit, cfg.Server.Recheck)
	}
	in := Inspect(path)
	if len(in.Problems) != 0 || in.Err != nil {
		t.Fatalf("Inspect: %v %v", in.Problems, in.Err)
	}
	if len(in.Ignored) != 11 || !slices.Contains(in.Ignored, filepath.Join(d, "50-x.toml.dpkg-old")) {
		t.Errorf("Ignored = %q", in.Ignored)
	}
	// The order also decides which of two places is "first".
	path = dropInSetup(t, mainConfig, map[string]string{
		"9-b.toml":  "[daemon]\nrate_limit = 20\n",
		"10-a.toml": "[daemon]\nrate_limit = 30\n",
	})
	_, err = Load(path)
	d = filepath.Join(filepath.Dir(path), DropInDirName)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(d, "9-b.toml")+":2: daemon.rate_limit: is set in both "+filepath.Join(d, "10-a.toml")+":2 and ") {
		t.Errorf("Load = %v, want the conflict reported at 9-b.toml, naming 10-a.toml first", err)
	}
}

func TestDropInDuplicates(t *testing.T) {
	for _, tc := range []struct {
		name, dropin string
		key          string
		mainLine     int
		dropLine     int
		msg          string
	}{
		{"user in two files", "# pairings\n\n[users]\nalice = \"" + acctBob + "\"\n", "users.alice", 10, 4, `"alice" is mapped in both`},
		{"same user, same account", "[users]\nalice = \"" + acctAlice + "\"\n", "users.alice", 10, 2, `"alice" is mapped in both`},
		{"required key", "[policy]\nfail_mode = \"open\"\n", "policy.fail_mode", 6, 2, "is set in both"},
		{"dotted key", "policy.fail_mode = \"closed\"\n", "policy.fail_mode", 6, 1, "is set in both"},
		{"secret", "[latch]\nsecret = \"" + testSecret + "\"\n", "latch.secret", 3, 2, "is set in both"},
		{"table over a value", "[latch.app_id]\nx = 1\n", "latch.app_id", 2, 1, "is set in both"},
		{"list", "[policy]\n\n\nexempt_groups = [\"b\"]\n", "policy.exempt_groups", 7, 4, "is set in both"},
		// A user's instance ids are one entry: never merged from two files.
		{"instances in two files", "[instances]\nalice = { OPERATIONOPERATION01 = \"I2\" }\n", "instances.alice", 13, 2, `"alice" has instances in both`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			main := mainConfig
			if tc.key == "policy.exempt_groups" {
				main = strings.Replace(main, "pairing_file", "exempt_groups = [\"a\"]\npairing_file", 1)
			}
			if tc.key == "instances.alice" {
				main += "\n[instances]\nalice = { app = \"I1\" }\n"
			}
			path := dropInSetup(t, main, map[string]string{"50-x.toml": tc.dropin})
			if tc.key == "latch.secret" {
				os.Chmod(filepath.Join(filepath.Dir(path), DropInDirName, "50-x.toml"), 0o600)
			}
			drop := filepath.Join(filepath.Dir(path), DropInDirName, "50-x.toml")
			_, err := Load(path)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("Load = %v, want Problems", err)
			}
			p := ps[len(ps)-1]
			want := Problem{File: drop, Line: tc.dropLine, Key: tc.key}
			if p.File != want.File || p.Line != want.Line || p.Key != want.Key {
				t.Errorf("problem at %s:%d %s, want %s:%d %s (%v)", p.File, p.Line, p.Key, want.File, want.Line, want.Key, err)
			}
			both := tc.msg + " " + Source{path, tc.mainLine}.String() + " and " + Source{drop, tc.dropLine}.String()
			if !strings.Contains(p.Message, both) {
				t.Errorf("message %q lacks %q", p.Message, both)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("the secret is in the error: %v", err)
			}
			in := Inspect(path)
			if in.Err != nil || len(in.Problems) == 0 || in.Problems[len(in.Problems)-1].Error() != p.Error() {
				t.Errorf("Inspect disagrees with Load: %v %v", in.Problems, in.Err)
			}
		})
	}
}

// A problem in a drop-in names the drop-in and its line, not latch.toml.
func TestDropInProblemLocation(t *testing.T) {
	path := dropInSetup(t, mainConfig, map[string]string{
		"20-bad.toml":    "# comment\n[policy]\nunpaired = \"maybe\"\n[users]\nbob = \"short\"\n[server]\nlisen = \"x\"\n",
		"30-syntax.toml": "[daemon]\nrate_limit = = 3\n",
	})
	d := filepath.Join(filepath.Dir(path), DropInDirName)
	in := Inspect(path)
	// A syntax error stops the merge: only it is reported.
	if len(in.Problems) != 1 || in.Problems[0].File != filepath.Join(d, "30-syntax.toml") || in.Problems[0].Line != 2 {
		t.Fatalf("Inspect problems = %v", in.Problems)
	}
	os.Remove(filepath.Join(d, "30-syntax.toml"))
	_, err := Load(path)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load = %v", err)
	}
	bad := filepath.Join(d, "20-bad.toml")
	var got []string
	for _, p := range ps {
		got = append(got, Source{p.File, p.Line}.String()+" "+p.Key)
	}
	want := []string{bad + ":3 policy.unpaired", bad + ":5 users.bob", bad + ":7 server.lisen"}
	if !slices.Equal(got, want) {
		t.Errorf("problems at %q, want %q\n%v", got, want, err)
	}
}

func TestDropInPermissions(t *testing.T) {
	t.Run("writable by others", func(t *testing.T) {
		path := dropInSetup(t, mainConfig, map[string]string{"50-x.toml": "[daemon]\nrate_limit = 20\n"})
		drop := filepath.Join(filepath.Dir(path), DropInDirName, "50-x.toml")
		os.Chmod(drop, 0o664)
		_, err := Load(path)
		var pe *PermissionError
		if !errors.As(err, &pe) || pe.Path != drop {
			t.Fatalf("Load = %v, want a PermissionError about %s", err, drop)
		}
		in := Inspect(path)
		if len(in.Problems) != 1 || in.Problems[0].File != drop || in.Config == nil || in.Config.Daemon.RateLimit != 20 {
			t.Errorf("Inspect = %v (config %v)", in.Problems, in.Config)
		}
	})
	t.Run("secret readable by others", func(t *testing.T) {
		path := dropInSetup(t, strings.Replace(mainConfig, "secret = \"", "# secret elsewhere \"", 1),
			map[string]string{"50-secret.toml": "[latch]\nsecret = \"" + testSecret + "\"\n"})
		drop := filepath.Join(filepath.Dir(path), DropInDirName, "50-secret.toml")
		_, err := Load(path)
		var pe *PermissionError
		if !errors.As(err, &pe) || pe.Path != drop || !strings.Contains(err.Error(), "read the Latch secret") {
			t.Fatalf("Load = %v, want a PermissionError: others can read the secret in %s", err, drop)
		}
		os.Chmod(drop, 0o600)
		if _, err := Load(path); err != nil {
			t.Fatalf("mode 600: %v", err)
		}
	})
	t.Run("directory writable by others", func(t *testing.T) {
		path := dropInSetup(t, mainConfig, map[string]string{"50-x.toml": "[daemon]\nrate_limit = 20\n"})
		d := filepath.Join(filepath.Dir(path), DropInDirName)
		os.Chmod(d, 0o777)
		_, err := Load(path)
		var pe *PermissionError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), "drop-in directory") {
			t.Fatalf("Load = %v, want a PermissionError about the drop-in directory", err)
		}
		if in := Inspect(path); len(in.Problems) == 0 {
			t.Errorf("Inspect found nothing wrong")
		}
	})
	t.Run("directory owned by another user", func(t *testing.T) {
		needRoot(t)
		path := dropInSetup(t, mainConfig, map[string]string{"50-x.toml": "[daemon]\nrate_limit = 20\n"})
		chown(t, filepath.Join(filepath.Dir(path), DropInDirName), 65534)
		var pe *PermissionError
		if _, err := Load(path); !errors.As(err, &pe) {
			t.Fatalf("Load = %v, want a PermissionError", err)
		}
	})
	t.Run("file owned by another user", func(t *testing.T) {
		needRoot(t)
		path := dropInSetup(t, mainConfig, map[string]string{"50-x.toml": "[daemon]\nrate_limit = 20\n"})
		drop := filepath.Join(filepath.Dir(path), DropInDirName, "50-x.toml")
		chown(t, drop, 65534)
		var pe *PermissionError
		if _, err := Load(path); !errors.As(err, &pe) || pe.Path != drop {
			t.Fatalf("Load = %v, want a PermissionError about %s", err, drop)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		path := dropInSetup(t, mainConfig, nil)
		writeFile(t, filepath.Join(filepath.Dir(path), DropInDirName), "x", 0o644)
		if _, err := Load(path); err == nil {
			t.Fatal("Load accepted a latch.d that is a file")
		}
	})
	t.Run("a drop-in that is a directory", func(t *testing.T) {
		path := dropInSetup(t, mainConfig, map[string]string{})
		mkdir(t, filepath.Join(filepath.Dir(path), DropInDirName, "50-x.toml"), 0o755)
		if _, err := Load(path); err == nil {
			t.Fatal("Load accepted a drop-in that is a directory")
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		path := dropInSetup(t, mainConfig, nil)
		cfg, err := Load(path)
		if err != nil || len(cfg.Files) != 1 {
			t.Fatalf("Load without latch.d = %v, %v", cfg, err)
		}
	})
}

func TestPairingFileSetting(t *testing.T) {
	for _, v := range []string{"/etc/latch-ssh/latch.d/50-paired.toml", "latch.d/50-paired.conf", "latch.d/../x.toml",
		"other/50-paired.toml", "latch.d/.x.toml", "latch.d/sub/x.toml", "latch.toml.bak", "./latch.toml", "latch.d/"} {
		path := dropInSetup(t, strings.Replace(mainConfig, "latch.d/50-paired.toml", v, 1), nil)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), ":7: policy.pairing_file: ") {
			t.Errorf("pairing_file = %q: Load = %v, want a problem at line 7", v, err)
		}
	}
	// Unset: the default drop-in, so that a latch.toml rewritten by
	// configuration management never holds a pairing (issue 17).
	path := dropInSetup(t, strings.Replace(mainConfig, "pairing_file", "# pairing_file", 1), nil)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(path), DefaultPairingFile); cfg.Policy.PairingFile != want || cfg.FileFor("bob") != want {
		t.Errorf("without pairing_file: %q, FileFor %q, want %q", cfg.Policy.PairingFile, cfg.FileFor("bob"), want)
	}
	// The main file's own name keeps new pairings in it.
	path = dropInSetup(t, strings.Replace(mainConfig, "latch.d/50-paired.toml", filepath.Base(path), 1), nil)
	if cfg, err = Load(path); err != nil {
		t.Fatal(err)
	}
	if cfg.FileFor("bob") != path {
		t.Errorf("pairing_file = %q: FileFor %q, want %q", filepath.Base(path), cfg.FileFor("bob"), path)
	}
}

func TestCreatePairingFile(t *testing.T) {
	path := dropInSetup(t, mainConfig, nil)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pf := cfg.FileFor("bob")
	if err := CreatePairingFile(pf); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(pf)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pairing file: %v %v", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(pf)); err != nil || di.Mode().Perm() != 0o755 {
		t.Fatalf("drop-in directory: %v %v", di, err)
	}
	if err := AddUser(pf, "bob", acctBob); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(pf)
	if !strings.HasPrefix(string(b), "# Written by latch-ssh pair") || !strings.HasSuffix(string(b), "[users]\nbob = \""+acctBob+"\"\n") {
		t.Errorf("pairing file:\n%s", b)
	}
	// An existing file is left alone.
	if err := CreatePairingFile(pf); err != nil {
		t.Fatal(err)
	}
	if c, _ := os.ReadFile(pf); string(c) != string(b) {
		t.Errorf("CreatePairingFile changed an existing file:\n%s", c)
	}
	if cfg, err := Load(path); err != nil || cfg.UserSources["bob"] != (Source{pf, 6}) {
		t.Errorf("after pairing bob: %v, %v", cfg, err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(pf), ".*")); len(left) != 0 {
		t.Errorf("left behind: %q", left)
	}
}

// BenchmarkLoadDropIns measures Load, which the PAM hook runs at every
// login it decides itself (no daemon): latch.toml alone, then with two
// drop-ins (the fleet layout: an admin drop-in and the pairing file).
func BenchmarkLoadDropIns(b *testing.B) {
	for _, n := range []int{0, 2} {
		b.Run(map[int]string{0: "latch.toml-only", 2: "two-drop-ins"}[n], func(b *testing.B) {
			dir, err := filepath.EvalSymlinks(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			path := filepath.Join(dir, "latch.toml")
			if err := os.WriteFile(path, []byte(mainConfig), 0o600); err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				d := filepath.Join(dir, DropInDirName)
				if err := os.Mkdir(d, 0o755); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "10-admin.toml"), []byte("[operations]\nsshd = \""+testOp+"\"\n"), 0o644); err != nil {
					b.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(d, "50-paired.toml"), []byte(pairingHeader+"bob = \""+acctBob+"\"\n"), 0o600); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := Load(path); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if _, err := Load(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
