package users

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// editCases are the golden edits: testdata/edit/NAME.toml edited gives
// testdata/edit/NAME.golden.
var editCases = []struct {
	name, user, account string
	remove              bool
}{
	{"comments", "dave", acctDave, false},            // insert before the blank line and comment of the next table
	{"crlf", "dave", acctDave, false},                // CRLF kept, inserted line too
	{"quoted", "carol", acctErin, false},             // quoted key; value replaced, spacing and comment kept
	{"nousers", "alice", acctAlice, false},           // [users] appended
	{"nousers-noeol", "alice", acctAlice, false},     // missing final newline added first
	{"middle", "dave", acctDave, false},              // [users] followed by other tables
	{"replace", "alice", acctErin, false},            // existing user: only the value changes
	{"remove", "bob", "", true},                      // line gone, comment with it
	{"remove-noeol", "bob", "", true},                // last line, no final newline
	{"empty-users", "alice", acctAlice, false},       // header with a comment and no entries
	{"dotted-name", "john.doe", acctDave, false},     // a dot in the name needs a quoted key; indent copied
	{"dotted-name-remove", "alice", "", true},        // indented line removed
	{"remove-then-empty", "alice", "", true},         // the last user of the table
	{"multiline-neighbour", "dave", acctDave, false}, // insert after a multi-line value
}

func TestEditGolden(t *testing.T) {
	for _, c := range editCases {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata/edit", c.name+".toml"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := editUsers(in, c.user, c.account, c.remove)
			if err != nil {
				t.Fatalf("editUsers: %v", err)
			}
			golden := filepath.Join("testdata/edit", c.name+".golden")
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("got:\n%s\nwant:\n%s", out, want)
			}

			// The same edit through the file: same bytes, and the previous
			// account for a removal.
			path := writeFile(t, safeDir(t)+"/latch.toml", string(in), 0o600)
			if c.remove {
				prev, err := RemoveUser(path, c.user)
				if err != nil {
					t.Fatal(err)
				}
				old, _ := decodeRaw(in)
				if prev != old["users"].(map[string]any)[c.user] {
					t.Errorf("previous account %q", prev)
				}
			} else if err := SetUser(path, c.user, c.account); err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
				t.Errorf("file after edit:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestEditRefuses(t *testing.T) {
	head := strings.Replace(validConfig, "[users]\nalice = \""+acctAlice+"\"\n", "", 1)
	cases := []struct {
		name, text, user, account string
		remove                    bool
		want                      string
	}{
		{"inline table", "users = { alice = \"" + acctAlice + "\" }\n" + head, "bob", acctBob, false, "line 1: [users] is written as an inline table"},
		{"dotted keys", "users.alice = \"" + acctAlice + "\"\n" + head, "bob", acctBob, false, "line 1: [users] is written as an inline table, with dotted keys"},
		{"sub-table", head + "[users]\nalice = \"" + acctAlice + "\"\n[users.x]\n", "bob", acctBob, false, "line 13:"},
		{"array of tables", head + "[[users]]\nalice = \"" + acctAlice + "\"\n", "bob", acctBob, false, "users is not a table"},
		{"multi-line value", head + "[users]\nalice = \"\"\"\n" + acctAlice + "\"\"\"\n", "alice", acctBob, false, "spans lines"},
		{"bad account", validConfig, "bob", "nope", false, `account id "nope" is not 64 letters and digits`},
		{"bad user", validConfig, "bad user", acctBob, false, `"bad user" is not a valid user name`},
		{"syntax error", validConfig + "x = \n", "bob", acctBob, false, "fix the file first: line 13: TOML syntax error"},
		{"syntax error on the secret's line", strings.Replace(validConfig, testSecret, testSecret+`\uZZZZ`, 1), "bob", acctBob, false,
			"line 3: TOML syntax error on the secret's line (details hidden"},
		{"not mapped", validConfig, "bob", "", true, `"bob" is not in [users]`},
		{"would invalidate", validConfig + "[user_operations.alice]\nsshd = \"" + testOp + "\"\n", "alice", "", true, `"alice" is not in [users]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := editUsers([]byte(c.text), c.user, c.account, c.remove)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("editUsers = %v, want an error containing %q; output:\n%s", err, c.want, out)
			}
			if strings.Contains(err.Error(), testSecret[:20]) {
				t.Errorf("the secret leaked: %v", err)
			}
			if c.name == "not mapped" && !errors.Is(err, ErrNotMapped) {
				t.Errorf("%v does not wrap ErrNotMapped", err)
			}
		})
	}
}

// dirEntries lists dir, to catch leftover temporary files.
func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func TestSetUserKeepsModeAndOwner(t *testing.T) {
	dir := safeDir(t)
	writeFile(t, dir+"/secret", testSecret, 0o600)
	path := writeFile(t, dir+"/latch.toml", configWithSecretFile(dir+"/secret"), 0o640)
	gid := os.Getegid()
	if os.Geteuid() == 0 {
		gid = 65534 // a group other than root's, to see it kept
		if err := os.Chown(path, 0, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetUser(path, "bob", acctBob); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o640 || int(st.Uid) != os.Geteuid() || int(st.Gid) != gid {
		t.Errorf("after the edit: mode %v uid %d gid %d; want 0640, %d, %d", fi.Mode(), st.Uid, st.Gid, os.Geteuid(), gid)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if acct, _ := cfg.Account("bob"); acct != acctBob {
		t.Error("bob not added")
	}
	if got := dirEntries(t, dir); !reflect.DeepEqual(got, []string{"latch.toml", "secret"}) {
		t.Errorf("directory holds %v", got)
	}
}

func TestSetUserFollowsSymlink(t *testing.T) {
	dir := safeDir(t)
	mkdir(t, dir+"/real", 0o755)
	writeFile(t, dir+"/real/latch.toml", validConfig, 0o600)
	symlink(t, "real/latch.toml", dir+"/latch.toml")
	if err := SetUser(dir+"/latch.toml", "bob", acctBob); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(dir + "/latch.toml"); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced: %v %v", fi.Mode(), err)
	}
	if data, _ := os.ReadFile(dir + "/real/latch.toml"); !bytes.Contains(data, []byte(acctBob)) {
		t.Error("the target was not edited")
	}
}

// TestEditFailureLeavesFileIntact: a refused or failed edit leaves the file
// byte-identical, and no temporary file behind.
func TestEditFailureLeavesFileIntact(t *testing.T) {
	cases := []struct {
		name string
		mode os.FileMode
		edit func(path string) error
		want string
	}{
		{"invalid account", 0o600, func(p string) error { return SetUser(p, "bob", "nope") }, "not 64 letters"},
		{"unsafe file", 0o606, func(p string) error { return SetUser(p, "bob", acctBob) }, "chmod 600"},
		{"remove unmapped", 0o600, func(p string) error { _, err := RemoveUser(p, "bob"); return err }, "not in [users]"},
		{"write fails", 0o600, func(p string) error {
			// Root ignores directory permissions, so make the write itself
			// fail: a helper process with a file size limit below the new
			// file's size, as on a full disk.
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"=setuser-fsize", helperPathEnv+"="+p, helperUsersEnv+"=bob",
				helperFsizeEnv+"="+strconv.Itoa(len(validConfig)/2))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitEditFailed {
				return fmt.Errorf("helper: %v: %s", err, out)
			}
			return errors.New(string(out))
		}, "writing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := safeDir(t)
			path := writeFile(t, dir+"/latch.toml", validConfig, c.mode)
			err := c.edit(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("edit = %v, want an error containing %q", err, c.want)
			}
			if data, _ := os.ReadFile(path); string(data) != validConfig {
				t.Errorf("the file changed:\n%s", data)
			}
			if got := dirEntries(t, dir); !reflect.DeepEqual(got, []string{"latch.toml"}) {
				t.Errorf("directory holds %v", got)
			}
		})
	}
}

// TestSetUserConcurrent has 50 goroutines and 4 processes each add users
// to one file at once: the lock and the re-read under it must lose none,
// and the admin's comments must survive.
func TestSetUserConcurrent(t *testing.T) {
	dir := safeDir(t)
	orig, err := os.ReadFile("testdata/edit/comments.toml")
	if err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, dir+"/latch.toml", string(orig), 0o600)
	want := map[string]string{"alice": acctAlice, "bob": acctBob}

	var procs []*exec.Cmd
	for p := range 4 {
		var names []string
		for i := range 5 {
			names = append(names, fmt.Sprintf("proc%d_%d", p, i))
			want[names[i]] = acctDave
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"=setusers", helperPathEnv+"="+path, helperUsersEnv+"="+strings.Join(names, ","))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("helper output: %s", out.String())
			}
		})
		procs = append(procs, cmd)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for g := range 50 {
		user := fmt.Sprintf("user%02d", g)
		want[user] = acctErin
		wg.Go(func() { errs <- SetUser(path, user, acctErin) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, p := range procs {
		if err := p.Wait(); err != nil {
			t.Errorf("helper process: %v", err)
		}
	}

	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Users, want) {
		t.Errorf("got %d users, want %d: %v", len(cfg.Users), len(want), cfg.Users)
	}
	// Every original line is still there, in order.
	data, _ := os.ReadFile(path)
	rest := data
	for _, line := range bytes.SplitAfter(orig, []byte("\n")) {
		i := bytes.Index(rest, line)
		if i < 0 {
			t.Fatalf("original line %q lost or moved:\n%s", line, data)
		}
		rest = rest[i+len(line):]
	}
	if got := dirEntries(t, dir); !reflect.DeepEqual(got, []string{"latch.toml"}) {
		t.Errorf("directory holds %v", got)
	}
}

// AddUser refuses a user who is already mapped, checked under the edit
// lock, and leaves the file as it was.
func TestAddUserRefusesMappedUser(t *testing.T) {
	dir := safeDir(t)
	writeFile(t, dir+"/secret", testSecret, 0o600)
	path := writeFile(t, dir+"/latch.toml", configWithSecretFile(dir+"/secret"), 0o600)
	if err := AddUser(path, "bob", acctBob); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	err := AddUser(path, "bob", strings.Repeat("Z", 64))
	if !errors.Is(err, ErrAlreadyMapped) {
		t.Fatalf("second AddUser: %v, want ErrAlreadyMapped", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the refused AddUser changed the file")
	}
}
