package users

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// Issue 17: [latch] instance and instance_name, and the [instances] table
// of this server's instance ids per user.
func TestParseInstances(t *testing.T) {
	text := strings.Replace(validConfig, "[policy]", "instance = \"host\"\ninstance_name = \"SSH to %h (100%%)\"\n\n[policy]", 1) +
		"bob = \"" + acctBob + "\"\n\n[instances]\nbob = { app = \"INSTAPP1\", " + testOp + " = \"INSTOP1\" } # paired\n"
	cfg, err := Parse("latch.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.InstancesOn() || cfg.InstanceNameFor("web-1") != "SSH to web-1 (100%)" {
		t.Fatalf("instance %q, name %q", cfg.Latch.Instance, cfg.InstanceNameFor("web-1"))
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
	// name defaults to "ssh <host>". Ids of a user not in [users] are not
	// a problem of the file (check-config warns).
	cfg, err = Parse("latch.toml", []byte(validConfig+"\n[instances]\ncarol = { app = \"I1\" }\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InstancesOn() || cfg.InstanceNameFor("h") != "ssh h" || cfg.MissingInstances("alice") != nil {
		t.Fatalf("defaults: %+v", cfg.Latch)
	}
	if _, ok := cfg.Instance("carol", ""); ok || cfg.Instances["carol"]["app"] != "I1" {
		t.Fatalf("instances off: %+v", cfg.Instances)
	}
	if c2, err := Parse("latch.toml", []byte(strings.Replace(validConfig, "[policy]", "instance = \"\"\n[policy]", 1))); err != nil || c2.InstancesOn() {
		t.Errorf(`instance = "": %v`, err)
	}
}

// Every mistake in the new settings is a problem with file:line and a fix.
func TestParseInstanceProblems(t *testing.T) {
	inst := func(v string) string { return validConfig + "\n[instances]\n" + v + "\n" }
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
		{"bad latch key", inst(`alice = { sshd = "I1" }`), []want{{15, "instances.alice.sshd", `neither "app"`}}},
		{"bad instance id", inst(`alice = { app = "I-1" }`), []want{{15, "instances.alice.app", "is not an instance id"}}},
		{"instance id not a string", inst(`alice = { app = 1 }`), []want{{15, "instances.alice.app", "must be a string"}}},
		{"user not a table", inst(`alice = "I1"`), []want{{15, "instances.alice", "must be a table"}}},
		{"bad user name", inst(`"-x" = { app = "I1" }`), []want{{15, "instances.-x", "not a valid user name"}}},
		{"not a table", validConfig + "instances = 1\n", []want{{13, "users.instances", "must be a string"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("latch.toml", []byte(tc.text))
			checkProblems(t, err, tc.want)
		})
	}
}

// SetInstances writes one line of [instances] in place, creating the table
// when missing, keeping comments and every other byte; no ids remove the
// line; a hand-written layout it cannot edit safely is refused.
func TestSetInstances(t *testing.T) {
	dir := safeDir(t)
	text := strings.Replace(validConfig, "alice = \""+acctAlice+"\"\n", "# Alice, ops\nalice = \""+acctAlice+"\" # paired 2026\n", 1) + "\n# the end"
	path := writeFile(t, dir+"/latch.toml", text, 0o600)
	inst := map[string]string{testOp: "INSTOP1", "app": "INSTAPP1"}
	if err := SetInstances(path, "alice", inst); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	table := "\n# This server's Latch instances of each user's latch: latch-ssh pair writes them.\n[instances]\n" +
		"alice = { app = \"INSTAPP1\", " + testOp + " = \"INSTOP1\" }\n"
	if want := text + "\n" + table; string(got) != want {
		t.Fatalf("file after SetInstances:\n%s\nwant:\n%s", got, want)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Instances["alice"], inst) || cfg.Users["alice"] != acctAlice {
		t.Fatalf("loaded %+v %+v", cfg.Users, cfg.Instances)
	}
	// Another user: a line added to the table; alice's replaced in place.
	if err := SetInstances(path, "bob.smith", map[string]string{"app": "B1"}); err != nil {
		t.Fatal(err)
	}
	if err := SetInstances(path, "alice", map[string]string{"app": "X1"}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(path)
	if want := text + "\n" + strings.Replace(table, "{ app = \"INSTAPP1\", "+testOp+" = \"INSTOP1\" }", "{ app = \"X1\" }", 1) + "\"bob.smith\" = { app = \"B1\" }\n"; string(got) != want {
		t.Fatalf("file after two more edits:\n%s\nwant:\n%s", got, want)
	}
	// No ids: the line goes; again: nothing to do.
	for range 2 {
		if err := SetInstances(path, "bob.smith", nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := os.ReadFile(path); strings.Contains(string(got), "bob.smith") || !strings.Contains(string(got), "alice = { app = \"X1\" }\n") {
		t.Fatalf("after removing bob.smith:\n%s", got)
	}
	before, _ := os.ReadFile(path)
	if err := SetInstances(path, "alice", map[string]string{"sshd": "X"}); err == nil {
		t.Fatal("a bad latch key was written")
	}
	if err := SetInstances(path, "-x", map[string]string{"app": "X"}); err == nil {
		t.Fatal("a bad user name was written")
	}
	if got, _ := os.ReadFile(path); string(got) != string(before) {
		t.Fatalf("a refused edit changed the file:\n%s", got)
	}
	// Sub-tables are the admin's layout: refused.
	sub := writeFile(t, dir+"/sub.toml", validConfig+"\n[instances.alice]\napp = \"I1\"\n", 0o600)
	if err := SetInstances(sub, "alice", inst); err == nil || !strings.Contains(err.Error(), "edit it by hand") {
		t.Fatalf("sub-table: %v", err)
	}
}

// FuzzSetInstances: when editInstances accepts an edit, the result decodes
// to the old document with exactly that user's instances changed, and a
// valid configuration stays valid with only Instances changed.
func FuzzSetInstances(f *testing.F) {
	addSeeds(f, func(data []byte) {
		f.Add(data, "alice", true)
		f.Add(data, "bob", false)
	})
	f.Fuzz(func(t *testing.T, data []byte, user string, set bool) {
		if !namePattern.MatchString(user) {
			return // SetInstances refuses it first
		}
		var inst map[string]string
		if set {
			inst = map[string]string{"app": "I1", testOp: "I2"}
		}
		out, err := editInstances(data, user, inst)
		if err != nil {
			return
		}
		before, _ := decodeRaw(data)
		after, err := decodeRaw(out)
		if err != nil {
			t.Fatalf("output does not decode: %v\n%s", err, out)
		}
		table, _ := before["instances"].(map[string]any)
		if table == nil {
			table = map[string]any{}
		}
		delete(table, user)
		if set {
			table[user] = map[string]any{"app": "I1", testOp: "I2"}
		}
		if len(table) > 0 || after["instances"] != nil {
			before["instances"] = table
		}
		if !reflect.DeepEqual(before, after) {
			t.Fatalf("documents differ beyond %s's instances:\n%s\n---\n%s", user, data, out)
		}
		if oldCfg, err := Parse("f.toml", data); err == nil {
			newCfg, err := Parse("f.toml", out)
			if err != nil {
				t.Fatalf("a valid config became invalid: %v", err)
			}
			delete(oldCfg.Instances, user)
			if set {
				oldCfg.Instances[user] = inst
			}
			// Lines move with the edit.
			oldCfg.UserSources, oldCfg.InstanceSources = newCfg.UserSources, newCfg.InstanceSources
			if !reflect.DeepEqual(oldCfg, newCfg) {
				t.Fatalf("config changed beyond Instances[%s]", user)
			}
		}
	})
}
