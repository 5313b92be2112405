package users

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// Issue 17: [latch] instance and instance_name, and [users] entries that
// carry instance ids beside the account id.
func TestParseInstances(t *testing.T) {
	text := strings.Replace(validConfig, "[policy]", "instance = \"host\"\ninstance_name = \"SSH to %h (100%%)\"\n\n[policy]", 1) +
		"bob = { account = \"" + acctBob + "\", instances = { app = \"INSTAPP1\", " + testOp + " = \"INSTOP1\" } } # paired\n"
	cfg, err := Parse("latch.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.InstancesOn() || cfg.InstanceNameFor("web-1") != "SSH to web-1 (100%)" {
		t.Fatalf("instance %q, name %q", cfg.Latch.Instance, cfg.InstanceNameFor("web-1"))
	}
	if acc, _ := cfg.Account("bob"); acc != acctBob {
		t.Fatalf("bob's account %q", acc)
	}
	for _, tc := range []struct {
		user, op, want string
		ok             bool
	}{
		{"bob", "", "INSTAPP1", true},
		{"bob", testOp, "INSTOP1", true},
		{"bob", "OTHEROPERATIONOTHER1", "", false},
		{"alice", "", "", false},
	} {
		if got, ok := cfg.Instance(tc.user, tc.op); got != tc.want || ok != tc.ok {
			t.Errorf("Instance(%s, %q) = %q, %v; want %q, %v", tc.user, tc.op, got, ok, tc.want, tc.ok)
		}
	}
	if got := cfg.Latches("bob"); !reflect.DeepEqual(got, []string{"", testOp}) {
		t.Errorf("Latches = %q", got)
	}
	if got := cfg.MissingInstances("alice"); !reflect.DeepEqual(got, []string{"", testOp}) {
		t.Errorf("alice's missing instances = %q", got)
	}
	if got := cfg.MissingInstances("bob"); got != nil {
		t.Errorf("bob's missing instances = %q", got)
	}

	// Off by default: stored ids are kept but not asked about, and the
	// name defaults to "ssh <host>".
	cfg, err = Parse("latch.toml", []byte(validConfig+"bob = { account = \""+acctBob+"\", instances = { app = \"I1\" } }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InstancesOn() || cfg.InstanceNameFor("h") != "ssh h" || cfg.MissingInstances("alice") != nil {
		t.Fatalf("defaults: %+v", cfg.Latch)
	}
	if _, ok := cfg.Instance("bob", ""); ok || cfg.Instances["bob"]["app"] != "I1" {
		t.Fatalf("instances off: %+v", cfg.Instances)
	}
	for _, v := range []string{`""`} {
		c2, err := Parse("latch.toml", []byte(strings.Replace(validConfig, "[policy]", "instance = "+v+"\n[policy]", 1)))
		if err != nil || c2.InstancesOn() {
			t.Errorf("instance = %s: %v", v, err)
		}
	}
}

// Every mistake in the new settings is a problem with file:line and a fix.
func TestParseInstanceProblems(t *testing.T) {
	bob := func(v string) string { return validConfig + "bob = " + v + "\n" }
	latch := func(kv string) string { return strings.Replace(validConfig, "\n[policy]", kv+"\n\n[policy]", 1) }
	for _, tc := range []struct {
		name, text string
		want       []want
	}{
		{"bad mode", latch(`instance = "server"`), []want{{4, "latch.instance", `must be "host" or "", not "server"`}}},
		{"mode not a string", latch(`instance = true`), []want{{4, "latch.instance", "must be a string"}}},
		{"bad escape", latch(`instance_name = "ssh %u"`), []want{{4, "latch.instance_name", "not %h"}}},
		{"trailing percent", latch(`instance_name = "ssh %"`), []want{{4, "latch.instance_name", "not %h"}}},
		{"empty name", latch(`instance_name = "  "`), []want{{4, "latch.instance_name", "is empty"}}},
		{"long name", latch(`instance_name = "` + strings.Repeat("x", 40) + `%h"`), []want{{4, "latch.instance_name", "too long"}}},
		{"control character", latch(`instance_name = "ssh\t%h"`), []want{{4, "latch.instance_name", "control characters"}}},
		{"user without account", bob(`{ instances = { app = "I1" } }`), []want{{13, "users.bob.account", "the account id is missing"}}},
		{"user with a bad account", bob(`{ account = "short" }`), []want{{13, "users.bob.account", "must be exactly 64"}}},
		{"unknown key in a user", bob(`{ account = "` + acctBob + `", instance = "I1" }`), []want{{13, "users.bob.instance", `unknown key "instance" in [users.bob]; did you mean "instances"?`}}},
		{"bad latch key", bob(`{ account = "` + acctBob + `", instances = { sshd = "I1" } }`), []want{{13, "users.bob.instances.sshd", `neither "app"`}}},
		{"bad instance id", bob(`{ account = "` + acctBob + `", instances = { app = "I-1" } }`), []want{{13, "users.bob.instances.app", "is not an instance id"}}},
		{"instance id not a string", bob(`{ account = "` + acctBob + `", instances = { app = 1 } }`), []want{{13, "users.bob.instances.app", "must be a string"}}},
		{"instances not a table", bob(`{ account = "` + acctBob + `", instances = "I1" }`), []want{{13, "users.bob.instances", "must be a table"}}},
		{"user a number", bob(`1`), []want{{13, "users.bob", "must be the account id in quotes"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("latch.toml", []byte(tc.text))
			checkProblems(t, err, tc.want)
		})
	}
}

// SetInstances writes the ids on the user's own line, keeping its comment
// and every other byte; RemoveUser removes such a line; an account changed
// since is refused.
func TestSetInstances(t *testing.T) {
	dir := safeDir(t)
	text := strings.Replace(validConfig, "alice = \""+acctAlice+"\"\n", "# Alice, ops\nalice = \""+acctAlice+"\" # paired 2026\nbob = \""+acctBob+"\"\n", 1) + "\n# the end\n"
	path := writeFile(t, dir+"/latch.toml", text, 0o600)
	inst := map[string]string{testOp: "INSTOP1", "app": "INSTAPP1"}
	if err := SetInstances(path, "alice", acctAlice, inst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	wantLine := "alice = { account = \"" + acctAlice + "\", instances = { app = \"INSTAPP1\", " + testOp + " = \"INSTOP1\" } } # paired 2026\n"
	if want := strings.Replace(text, "alice = \""+acctAlice+"\" # paired 2026\n", wantLine, 1); string(got) != want {
		t.Fatalf("file after SetInstances:\n%s\nwant:\n%s", got, want)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Instances["alice"], inst) || cfg.Users["alice"] != acctAlice || cfg.Users["bob"] != acctBob {
		t.Fatalf("loaded %+v %+v", cfg.Users, cfg.Instances)
	}
	// Again with other ids: replaced; with none: back to the plain line.
	if err := SetInstances(path, "alice", acctAlice, map[string]string{"app": "X1"}); err != nil {
		t.Fatal(err)
	}
	if err := SetInstances(path, "alice", acctAlice, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != text {
		t.Fatalf("file after clearing:\n%s", got)
	}
	if err := SetInstances(path, "alice", acctBob, inst); err == nil || !strings.Contains(err.Error(), "another Latch account") {
		t.Fatalf("other account: %v", err)
	}
	if err := SetInstances(path, "carol", acctBob, inst); !errors.Is(err, ErrNotMapped) {
		t.Fatalf("unmapped user: %v", err)
	}
	if err := SetInstances(path, "alice", acctAlice, map[string]string{"sshd": "X"}); err == nil {
		t.Fatal("a bad latch key was written")
	}
	if got, _ := os.ReadFile(path); string(got) != text {
		t.Fatalf("a refused edit changed the file:\n%s", got)
	}
	if err := SetInstances(path, "alice", acctAlice, inst); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveUser(path, "alice"); err != nil {
		t.Fatalf("RemoveUser of a line with instances: %v", err)
	}
	if got, _ := os.ReadFile(path); strings.Contains(string(got), "alice =") || !strings.Contains(string(got), "# Alice, ops\nbob =") {
		t.Fatalf("after RemoveUser:\n%s", got)
	}
	// A user written as a dotted key is refused, with the line to write.
	sub := writeFile(t, dir+"/sub.toml", "users.alice = \""+acctAlice+"\"\n"+strings.Replace(validConfig, "[users]\nalice = \""+acctAlice+"\"\n", "", 1), 0o600)
	if err := SetInstances(sub, "alice", acctAlice, inst); err == nil || !strings.Contains(err.Error(), "edit it by hand: alice = { account") {
		t.Fatalf("dotted key: %v", err)
	}
}
