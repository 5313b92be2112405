package users

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"
)

// configWithSecretFile is validConfig with the secret moved to file.
func configWithSecretFile(file string) string {
	return strings.Replace(validConfig, `secret = "`+testSecret+`"`, `secret_file = "`+file+`"`, 1)
}

func TestLoadPermissions(t *testing.T) {
	cases := []struct {
		name     string
		root     bool // needs root to set up
		setup    func(t *testing.T, dir string) (path string, fixFor string)
		fix      string // the expected fix, with %s for fixFor
		problems string // else: part of a non-permission error; "" = loads fine
	}{
		{name: "good 0600", setup: func(t *testing.T, dir string) (string, string) {
			return writeFile(t, dir+"/latch.toml", validConfig, 0o600), ""
		}},
		{name: "0644 without the secret, secret_file 0600", setup: func(t *testing.T, dir string) (string, string) {
			writeFile(t, dir+"/secret", testSecret+"\n", 0o600)
			return writeFile(t, dir+"/latch.toml", configWithSecretFile(dir+"/secret"), 0o644), ""
		}},
		{name: "sticky world-writable directory above", setup: func(t *testing.T, dir string) (string, string) {
			if err := os.Chmod(dir, os.ModeSticky|0o777); err != nil {
				t.Fatal(err)
			}
			mkdir(t, dir+"/etc", 0o755)
			return writeFile(t, dir+"/etc/latch.toml", validConfig, 0o600), ""
		}},
		{name: "group-writable", fix: "chmod 600 %s", setup: func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, dir+"/latch.toml", validConfig, 0o620)
			return p, p
		}},
		{name: "world-writable without the secret", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			writeFile(t, dir+"/secret", testSecret, 0o600)
			p := writeFile(t, dir+"/latch.toml", configWithSecretFile(dir+"/secret"), 0o646)
			return p, p
		}},
		{name: "owned by another uid", root: true, fix: "chown root:root %s", setup: func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, dir+"/latch.toml", validConfig, 0o600)
			chown(t, p, 65534)
			return p, p
		}},
		{name: "secret and world-readable", fix: "chmod 600 %s", setup: func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, dir+"/latch.toml", validConfig, 0o604)
			return p, p
		}},
		{name: "secret and group-readable", fix: "chmod 600 %s", setup: func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, dir+"/latch.toml", validConfig, 0o640)
			return p, p
		}},
		{name: "secret in an inline table and readable", fix: "chmod 600 %s", setup: func(t *testing.T, dir string) (string, string) {
			text := strings.Replace(strings.Replace(validConfig, "[latch]\n", "", 1),
				`app_id = "`+testAppID+`"`+"\n"+`secret = "`+testSecret+`"`,
				`latch = {app_id = "`+testAppID+`", secret = "`+testSecret+`"}`, 1)
			p := writeFile(t, dir+"/latch.toml", text, 0o644)
			return p, p
		}},
		{name: "secret_file world-readable", fix: "chmod 600 %s", setup: func(t *testing.T, dir string) (string, string) {
			s := writeFile(t, dir+"/secret", testSecret, 0o644)
			return writeFile(t, dir+"/latch.toml", configWithSecretFile(s), 0o600), s
		}},
		{name: "secret_file owned by another uid", root: true, fix: "chown root:root %s", setup: func(t *testing.T, dir string) (string, string) {
			s := writeFile(t, dir+"/secret", testSecret, 0o600)
			chown(t, s, 65534)
			return writeFile(t, dir+"/latch.toml", configWithSecretFile(s), 0o600), s
		}},
		{name: "ca_file world-writable", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			ca := writeFile(t, dir+"/ca.pem", "", 0o666)
			text := strings.Replace(validConfig, "\n[policy]", "ca_file = \""+ca+"\"\n\n[policy]", 1)
			return writeFile(t, dir+"/latch.toml", text, 0o600), ca
		}},
		{name: "symlink to a file in a world-writable directory", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/etc", 0o755)
			mkdir(t, dir+"/open", 0o777)
			writeFile(t, dir+"/open/latch.toml", validConfig, 0o600)
			symlink(t, "../open/latch.toml", dir+"/etc/latch.toml")
			return dir + "/etc/latch.toml", dir + "/open"
		}},
		{name: "symlink to a safe file", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/etc", 0o755)
			mkdir(t, dir+"/real", 0o755)
			writeFile(t, dir+"/real/latch.toml", validConfig, 0o600)
			symlink(t, dir+"/real/latch.toml", dir+"/etc/latch.toml")
			return dir + "/etc/latch.toml", ""
		}},
		{name: "symlink to a world-writable file", fix: "chmod 600 %s", setup: func(t *testing.T, dir string) (string, string) {
			p := writeFile(t, dir+"/real.toml", validConfig, 0o666)
			symlink(t, "real.toml", dir+"/latch.toml")
			return dir + "/latch.toml", p
		}},
		// Issue 14: the directory holding a link to a directory is
		// checked too (it used to be resolved away by EvalSymlinks: anyone
		// who can write dir/open could repoint dir/open/d).
		{name: "link to a safe directory, the link in a world-writable directory", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/open", 0o777)
			mkdir(t, dir+"/safe", 0o755)
			writeFile(t, dir+"/safe/latch.toml", validConfig, 0o600)
			symlink(t, dir+"/safe", dir+"/open/d")
			return dir + "/open/d/latch.toml", dir + "/open"
		}},
		// Issue 14: in a sticky directory, a link's owner chooses where it
		// points; only root's (or this process's user's) links are followed.
		{name: "link of another uid in a sticky directory", root: true, fix: "use the path it points to, or remove it", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/tmp", os.ModeSticky|0o777)
			mkdir(t, dir+"/real", 0o755)
			writeFile(t, dir+"/real/latch.toml", validConfig, 0o600)
			symlink(t, dir+"/real", dir+"/tmp/etc")
			chown(t, dir+"/tmp/etc", 65534)
			return dir + "/tmp/etc/latch.toml", ""
		}},
		// Issue 14: ".." after a link is the parent of the link's target,
		// as for the kernel (and cat, and sshd), not a textual step back:
		// the file checked and read is the one every other tool reads.
		{name: "dot-dot after a link", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/etc", 0o755)
			writeFile(t, dir+"/etc/latch.toml", "not the file the kernel finds", 0o666)
			mkdir(t, dir+"/real", 0o755)
			mkdir(t, dir+"/real/sub", 0o755)
			writeFile(t, dir+"/real/latch.toml", validConfig, 0o600)
			symlink(t, dir+"/real/sub", dir+"/etc/link")
			return dir + "/etc/link/../latch.toml", ""
		}},
		{name: "world-writable parent directory", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/etc", 0o777)
			return writeFile(t, dir+"/etc/latch.toml", validConfig, 0o600), dir + "/etc"
		}},
		{name: "sticky world-writable parent directory", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/etc", os.ModeSticky|0o777)
			return writeFile(t, dir+"/etc/latch.toml", validConfig, 0o600), dir + "/etc"
		}},
		{name: "group-writable grandparent directory", fix: "chmod go-w %s", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/a", 0o775)
			mkdir(t, dir+"/a/b", 0o755)
			return writeFile(t, dir+"/a/b/latch.toml", validConfig, 0o600), dir + "/a"
		}},
		{name: "parent directory owned by another uid", root: true, fix: "chown root:root %s", setup: func(t *testing.T, dir string) (string, string) {
			mkdir(t, dir+"/etc", 0o755)
			chown(t, dir+"/etc", 65534)
			return writeFile(t, dir+"/etc/latch.toml", validConfig, 0o600), dir + "/etc"
		}},
		{name: "a FIFO", problems: "not a regular file", setup: func(t *testing.T, dir string) (string, string) {
			if err := syscall.Mkfifo(dir+"/latch.toml", 0o600); err != nil {
				t.Fatal(err)
			}
			return dir + "/latch.toml", ""
		}},
		{name: "a symlink loop", problems: "too many symbolic links", setup: func(t *testing.T, dir string) (string, string) {
			symlink(t, "latch.toml", dir+"/latch.toml")
			return dir + "/latch.toml", ""
		}},
		{name: "secret_file with a bad secret", problems: "latch.toml:3: latch.secret_file:", setup: func(t *testing.T, dir string) (string, string) {
			s := writeFile(t, dir+"/secret", testSecret[:39]+"\n", 0o600)
			return writeFile(t, dir+"/latch.toml", configWithSecretFile(s), 0o600), ""
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root {
				needRoot(t)
			}
			path, fixFor := c.setup(t, safeDir(t))
			cfg, err := Load(path)
			switch {
			case c.fix != "":
				var pe *PermissionError
				if !errors.As(err, &pe) {
					t.Fatalf("Load = %v, want a *PermissionError", err)
				}
				if want := strings.ReplaceAll(c.fix, "%s", fixFor); pe.Fix != want {
					t.Errorf("fix %q, want %q (error: %v)", pe.Fix, want, err)
				}
				if !strings.Contains(err.Error(), pe.Fix) {
					t.Errorf("the message %q does not give the fix", err)
				}
			case c.problems != "":
				if err == nil || !strings.Contains(err.Error(), c.problems) {
					t.Fatalf("Load = %v, want an error containing %q", err, c.problems)
				}
			case err != nil:
				t.Fatalf("Load: %v", err)
			case cfg.Secret() != testSecret:
				t.Errorf("secret not loaded")
			}
			if err != nil && strings.Contains(err.Error(), testSecret[:20]) {
				t.Errorf("the secret leaked: %v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(safeDir(t) + "/latch.toml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load = %v, want not-exist", err)
	}
}

func TestCheckFileNotRegular(t *testing.T) {
	dir := safeDir(t)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	var pe *PermissionError
	if err := CheckFile(dir, fi, false); !errors.As(err, &pe) || !strings.Contains(pe.Problem, "not a regular file") {
		t.Errorf("CheckFile(dir) = %v", err)
	}
}

func mkdir(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(path, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func chown(t *testing.T, path string, uid int) {
	t.Helper()
	if err := os.Lchown(path, uid, -1); err != nil {
		t.Fatal(err)
	}
}
