package forcecmd

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestPlanExec(t *testing.T) {
	found := func() (string, error) { return "/usr/lib/openssh/sftp-server", nil }
	missing := func() (string, error) { return "", errors.New("no sftp-server") }
	for _, tc := range []struct {
		name       string
		shell, cmd string
		hasCommand bool
		find       func() (string, error)
		want       execPlan
		wantErr    bool
	}{
		{name: "login shell", shell: "/bin/bash", want: execPlan{"/bin/bash", []string{"-bash"}}},
		{name: "login shell, empty passwd shell", shell: "", want: execPlan{"/bin/sh", []string{"-sh"}}},
		{name: "login shell, zsh", shell: "/usr/local/bin/zsh", want: execPlan{"/usr/local/bin/zsh", []string{"-zsh"}}},
		{name: "shell without a slash", shell: "bash", want: execPlan{"bash", []string{"-bash"}}},
		{name: "command", shell: "/bin/bash", cmd: "exit 7", hasCommand: true,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "exit 7"}}},
		{name: "command, empty passwd shell", cmd: "id", hasCommand: true,
			want: execPlan{"/bin/sh", []string{"sh", "-c", "id"}}},
		// sshd runs `shell -c ""` for an exec request with an empty command.
		{name: "empty command", shell: "/bin/bash", cmd: "", hasCommand: true,
			want: execPlan{"/bin/bash", []string{"bash", "-c", ""}}},
		{name: "scp", shell: "/bin/bash", cmd: "scp -t up", hasCommand: true,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "scp -t up"}}},
		{name: "internal-sftp", shell: "/bin/bash", cmd: "internal-sftp", hasCommand: true, find: found,
			want: execPlan{"/usr/lib/openssh/sftp-server", []string{"sftp-server"}}},
		{name: "internal-sftp with arguments", shell: "/bin/bash", cmd: "internal-sftp -l INFO -f AUTHPRIV", hasCommand: true, find: found,
			want: execPlan{"/usr/lib/openssh/sftp-server", []string{"sftp-server", "-l", "INFO", "-f", "AUTHPRIV"}}},
		{name: "internal-sftp, repeated spaces", shell: "/bin/bash", cmd: "internal-sftp  -l  INFO ", hasCommand: true, find: found,
			want: execPlan{"/usr/lib/openssh/sftp-server", []string{"sftp-server", "-l", "INFO"}}},
		// sshd accepts a tab after the name but splits on spaces only.
		{name: "internal-sftp, tab", shell: "/bin/bash", cmd: "internal-sftp\t-l INFO", hasCommand: true, find: found,
			want: execPlan{"/usr/lib/openssh/sftp-server", []string{"sftp-server", "INFO"}}},
		{name: "internal-sftp without sftp-server", shell: "/bin/bash", cmd: "internal-sftp", hasCommand: true, find: missing, wantErr: true},
		// Not internal-sftp for sshd: ordinary commands, through the shell.
		{name: "internal-sftp; rm", shell: "/bin/bash", cmd: "internal-sftp; rm -rf /", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "internal-sftp; rm -rf /"}}},
		{name: "internal-sftpx", shell: "/bin/bash", cmd: "internal-sftpx", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "internal-sftpx"}}},
		{name: "leading space", shell: "/bin/bash", cmd: " internal-sftp", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", " internal-sftp"}}},
		{name: "internal-sftp&&id", shell: "/bin/bash", cmd: "internal-sftp&&id", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "internal-sftp&&id"}}},
		{name: "internal-sftp newline", shell: "/bin/bash", cmd: "internal-sftp\nid", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "internal-sftp\nid"}}},
		{name: "INTERNAL-SFTP", shell: "/bin/bash", cmd: "INTERNAL-SFTP", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "INTERNAL-SFTP"}}},
		// A Subsystem given as a path is a command for sshd too.
		{name: "sftp-server path", shell: "/bin/bash", cmd: "/usr/lib/openssh/sftp-server", hasCommand: true, find: found,
			want: execPlan{"/bin/bash", []string{"bash", "-c", "/usr/lib/openssh/sftp-server"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			find := tc.find
			if find == nil {
				find = func() (string, error) { t.Fatal("sftp-server looked up"); return "", nil }
			}
			got, err := planExec(tc.shell, tc.cmd, tc.hasCommand, find)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("planExec(%q, %q, %v) = %+v, %v; want %+v", tc.shell, tc.cmd, tc.hasCommand, got, err, tc.want)
			}
		})
	}
}

func TestSessionEnv(t *testing.T) {
	in := []string{"PATH=/usr/bin", "LATCH_SSH_DEBUG=1", "FOO=bar", "LATCH_SSH_=", "LATCHY=1", "FOO=second", "SSH_ORIGINAL_COMMAND=ls", "NOEQUALS"}
	want := []string{"PATH=/usr/bin", "FOO=bar", "LATCHY=1", "FOO=second", "SSH_ORIGINAL_COMMAND=ls", "NOEQUALS"}
	if got := sessionEnv(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("sessionEnv = %q, want %q", got, want)
	}
}

func TestLookupEnv(t *testing.T) {
	env := []string{"A=1", "B=", "A=2", "C"}
	for _, tc := range []struct {
		name, want string
		ok         bool
	}{{"A", "1", true}, {"B", "", true}, {"C", "", false}, {"D", "", false}} {
		if v, ok := lookupEnv(env, tc.name); v != tc.want || ok != tc.ok {
			t.Errorf("lookupEnv(%q) = %q, %v; want %q, %v", tc.name, v, ok, tc.want, tc.ok)
		}
	}
	if got := remoteAddr([]string{"SSH_CONNECTION=192.0.2.7 50000 127.0.0.1 22"}); got != "192.0.2.7" {
		t.Errorf("remoteAddr = %q", got)
	}
	if got := remoteAddr(nil); got != "" {
		t.Errorf("remoteAddr(nil) = %q", got)
	}
}

func TestTruncateCommand(t *testing.T) {
	if got := truncateCommand("ls -l"); got != "ls -l" {
		t.Fatalf("short command changed: %q", got)
	}
	long := strings.Repeat("a", maxLoggedCommand-1) + "é" + strings.Repeat("b", 100)
	got := truncateCommand(long)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "...(cut)") || len(got) > maxLoggedCommand+len("...(cut)") {
		t.Fatalf("truncateCommand: %d bytes, valid %v, %q", len(got), utf8.ValidString(got), got[len(got)-20:])
	}
}

func TestLookupPasswd(t *testing.T) {
	pw, err := lookupPasswd(0)
	if err != nil {
		t.Fatal(err)
	}
	if pw.Name != "root" || pw.UID != 0 || pw.Home == "" || pw.Shell == "" {
		t.Fatalf("root: %+v", pw)
	}
	self, err := lookupPasswd(os.Getuid())
	if err != nil || self.UID != os.Getuid() {
		t.Fatalf("own uid: %+v, %v", self, err)
	}
	// A uid with no passwd entry must be an error, never a zero entry.
	if pw, err := lookupPasswd(2147480001); err == nil {
		t.Fatalf("uid 2147480001: %+v, want an error", pw)
	}
}
