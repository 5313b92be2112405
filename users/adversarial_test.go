package users

// The configuration file against the people who may touch it (issue 8):
// each test is one attack or fault, named after it, with what would happen
// without the defence it proves.

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestAttackConfigSymlinkToUserOwnedFile: /etc/latch-ssh/latch.toml is a
// symlink (left by an admin, or a package that "moved" the file) to a file
// a user owns, mode 0600 so it looks private. Without following the link
// and checking the owner of the target and of every directory on the way,
// that user could rewrite the configuration (fail_mode, [users], api_url)
// and decide every login; with it Load, and the edits of pair and unpair,
// refuse it and name the chown that fixes it, and say nothing of the
// secret.
func TestAttackConfigSymlinkToUserOwnedFile(t *testing.T) {
	needRoot(t)
	const user = 65534
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) (fixFor string)
	}{
		{"target in the user's own directory", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/home", 0o700)
			writeFile(t, dir+"/home/latch.toml", validConfig, 0o600)
			chown(t, dir+"/home/latch.toml", user)
			chown(t, dir+"/home", user)
			return dir + "/home"
		}},
		{"target owned by the user in a root directory", func(t *testing.T, dir string) string {
			mkdir(t, dir+"/home", 0o755)
			writeFile(t, dir+"/home/latch.toml", validConfig, 0o600)
			chown(t, dir+"/home/latch.toml", user)
			return dir + "/home/latch.toml"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := safeDir(t)
			mkdir(t, dir+"/etc", 0o755)
			fixFor := tc.setup(t, dir)
			symlink(t, dir+"/home/latch.toml", dir+"/etc/latch.toml")
			path := dir + "/etc/latch.toml"
			_, err := Load(path)
			var pe *PermissionError
			if !errors.As(err, &pe) || pe.Fix != "chown root:root "+fixFor {
				t.Fatalf("Load = %v; want a permission error with the fix chown root:root %s", err, fixFor)
			}
			if err := SetUser(path, "bob", acctBob); !errors.As(err, &pe) {
				t.Errorf("SetUser = %v; want the same refusal", err)
			}
			if data, _ := os.ReadFile(dir + "/home/latch.toml"); string(data) != validConfig {
				t.Errorf("the user's file was edited")
			}
			if strings.Contains(err.Error(), testSecret[:16]) {
				t.Errorf("the secret is in the error: %v", err)
			}
		})
	}
}

// TestAttackHandEditDuringPairing: two administrators at once, one running
// `latch-ssh pair` (which locks the file's directory), the other saving
// latch.toml from an editor (which takes no lock) between the moment pair
// read the file and the moment it renames its new version in place.
// Without checking that the file is still the one it read, pair would
// rename over the editor's save and silently throw that change away; with
// it the edit is refused (nothing written, no temporary file left), the
// editor's save stays, and doing it again succeeds on top of it.
func TestAttackHandEditDuringPairing(t *testing.T) {
	for _, tc := range []struct {
		name string
		save func(t *testing.T, path, text string)
	}{
		{"editor writes a new file and renames it", func(t *testing.T, path, text string) {
			writeFile(t, path+".swp", text, 0o600)
			if err := os.Rename(path+".swp", path); err != nil {
				t.Fatal(err)
			}
		}},
		{"editor rewrites the file in place", func(t *testing.T, path, text string) {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString(text); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := safeDir(t)
			path := writeFile(t, dir+"/latch.toml", validConfig, 0o600)
			admins := strings.Replace(validConfig, "[users]\n", "[users]\n# the other admin was here\ndave = \""+acctDave+"\"\n", 1)
			saved := false
			err := setUser(path, "bob", acctBob, func(string) {
				if !saved {
					saved = true
					tc.save(t, path, admins)
				}
			})
			if err == nil || !strings.Contains(err.Error(), "changed by someone else") {
				t.Fatalf("SetUser while another admin saved: %v; want a refusal", err)
			}
			if data, _ := os.ReadFile(path); string(data) != admins {
				t.Fatalf("the other admin's save was lost:\n%s", data)
			}
			if got := dirEntries(t, dir); !reflect.DeepEqual(got, []string{"latch.toml"}) {
				t.Errorf("directory holds %v", got)
			}
			// Again, now that nobody else is editing.
			if err := SetUser(path, "bob", acctBob); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[string]string{"alice": acctAlice, "bob": acctBob, "dave": acctDave}; !reflect.DeepEqual(cfg.Users, want) {
				t.Errorf("users %v, want %v", cfg.Users, want)
			}
		})
	}
}
