package wiring

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture copies testdata/pam/NAME into a temp pam.d, replacing @HOOK@ with
// a hook that passes the ownership checks: a root-owned latch-check in a
// root-only temp dir when running as root, else /usr/bin/true (so the pure
// PAM rules are tested as any user). Tests pass hook as hookPaths.
func fixture(t *testing.T, name string) (pamDir, hook string) {
	t.Helper()
	dir := t.TempDir()
	hook = "/usr/bin/true"
	if os.Geteuid() == 0 {
		hook = filepath.Join(dir, "bin", "latch-check")
		if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hook, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pamDir = filepath.Join(dir, "pam.d")
	if err := os.Mkdir(pamDir, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join("testdata", "pam", name)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		data = []byte(strings.ReplaceAll(string(data), "@HOOK@", hook))
		if err := os.WriteFile(filepath.Join(pamDir, e.Name()), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return pamDir, hook
}

// want is a finding a test expects: severity, file base name, line (0: any)
// and a piece of the message.
type want struct {
	sev  Severity
	file string
	line int
	msg  string
}

func (w want) matches(f Finding) bool {
	return f.Severity == w.sev && strings.Contains(f.Message, w.msg) &&
		(w.file == "" || filepath.Base(f.File) == w.file) && (w.line == 0 || f.Line == w.line)
}

// expect checks that got holds exactly the wanted findings, each once.
func expect(t *testing.T, got []Finding, wants ...want) {
	t.Helper()
	used := make([]bool, len(got))
	for _, w := range wants {
		n := 0
		for i, f := range got {
			if w.matches(f) {
				used[i] = true
				n++
			}
		}
		if n != 1 {
			t.Errorf("want one finding %+v, got %d", w, n)
		}
	}
	for i, f := range got {
		if !used[i] {
			t.Errorf("unexpected finding: %s", f)
		}
	}
}

func TestParsePAMServiceIncludes(t *testing.T) {
	dir, hook := fixture(t, "includes")
	st, err := ParsePAMService(dir, "sshd")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 0 {
		t.Fatalf("problems: %v", st.Problems)
	}
	type row struct {
		file         string
		line         int
		typ, control string
		module       string
		args         []string
		dash         bool
		level        int
	}
	var got []row
	for _, l := range st.Lines {
		got = append(got, row{filepath.Base(l.File), l.Line, l.Type, l.Control, l.Module, l.Args, l.Dash, l.Level})
	}
	wantRows := []row{
		{"common-auth", 1, "auth", "required", "pam_unix.so", nil, false, 0},
		{"acct", 3, "account", "required", "pam_nologin.so", nil, false, 0},
		{"acct", 4, "account", "required", "pam_exec.so", []string{"quiet", hook}, false, 0},
		{"sshd", 5, "account", "substack", "sub", nil, true, 0},
		{"sub", 1, "account", "sufficient", "pam_succeed_if.so", []string{"uid", "<", "1000"}, false, 1},
		{"sshd", 6, "session", "required", "pam_env.so", nil, false, 0},
	}
	if !reflect.DeepEqual(got, wantRows) {
		t.Errorf("lines:\n got %v\nwant %v", got, wantRows)
	}
	// The hook line sits in a file sshd includes, which other services
	// (su, sudo) may include too: without seteuid that is an error.
	expect(t, CheckPAM(dir, []string{"sshd"}, []string{hook}), want{Error, "acct", 4, "without `seteuid`"},
		want{Warning, "acct", 4, "not in its session stack"})
}

func TestParsePAMServiceErrors(t *testing.T) {
	dir, _ := fixture(t, "cycle")
	if _, err := ParsePAMService(dir, "nosuch"); !os.IsNotExist(err) {
		t.Errorf("missing service: err = %v, want not-exist", err)
	}
	for _, s := range []string{"", "..", "../etc/passwd"} {
		if _, err := ParsePAMService(dir, s); err == nil {
			t.Errorf("service %q accepted", s)
		}
	}
	st, err := ParsePAMService(dir, "sshd")
	if err != nil {
		t.Fatal(err)
	}
	expect(t, st.Problems, want{Error, "b", 1, "include loop sshd -> a -> b -> a"})
}

func TestParseArgsAndActions(t *testing.T) {
	if got, w := splitArgs(` a [b c\]d] e`), []string{"a", `b c]d`, "e"}; !reflect.DeepEqual(got, w) {
		t.Errorf("splitArgs = %q, want %q", got, w)
	}
	if got := action(parseActions("[success=1 default=ignore]"), "system_err"); got != "ignore" {
		t.Errorf("default action = %q", got)
	}
	if got := action(parseActions("[success=1]"), "system_err"); got != "bad" {
		t.Errorf("implicit action = %q, want bad", got)
	}
}

func TestCheckPAM(t *testing.T) {
	for _, tc := range []struct {
		name, dir string
		services  []string
		want      []want
		hooked    bool
	}{
		{"clean recipes", "clean", []string{"sshd", "sudo", "su", "su-l", "login"}, nil, true},
		{"sshd without the session line", "nosession", []string{"sshd"}, []want{{Warning, "sshd", 2, "not in its session stack"}}, true},
		{"include loop", "cycle", []string{"sshd"}, []want{{Error, "b", 1, "include loop"}, {Warning, "sshd", 1, "not in its session stack"}}, true},
		{"missing include", "cycle", []string{"missing"}, []want{{Error, "missing", 2, "cannot read included file"}}, true},
		{"bad lines", "cycle", []string{"badlines"}, []want{
			{Error, "badlines", 1, `unknown PAM type "acount"`},
			{Error, "badlines", 2, `unknown control "mandatory"`},
			{Error, "badlines", 3, "incomplete line"}}, false},

		{"auth only", "stacks", []string{"authonly"}, []want{{Error, "authonly", 1, "public-key SSH logins skip the auth stack"}}, true},
		{"session only", "stacks", []string{"sessiononly"}, []want{{Error, "sessiononly", 2, "session stack only"}}, true},
		{"auth and account", "stacks", []string{"both"}, []want{{Info, "both", 1, "ask Latch twice"}}, true},
		{"required", "stacks", []string{"required"}, nil, true},
		{"requisite", "stacks", []string{"requisite"}, nil, true},
		{"optional", "stacks", []string{"optional"}, []want{{Error, "optional", 1, `control "optional" the hook cannot deny`}}, true},
		{"sufficient", "stacks", []string{"sufficient"}, []want{{Error, "sufficient", 1, `control "sufficient" the hook cannot deny`}}, true},
		{"bracket ignore", "stacks", []string{"bracketignore"}, []want{{Error, "bracketignore", 1, `maps it to "ignore"`}}, true},
		{"bracket system_err", "stacks", []string{"bracketsyserr"}, []want{{Error, "bracketsyserr", 1, `maps it to "ignore"`}}, true},
		{"bracket bad", "stacks", []string{"bracketbad"}, []want{{Warning, "bracketbad", 1, "bracket control on the hook"}}, true},
		{"leading dash", "stacks", []string{"dash"}, nil, true},
		{"continued line", "stacks", []string{"continued"}, nil, true},
		{"comment cuts the command", "stacks", []string{"commented"}, nil, false},
		{"upper case keywords", "stacks", []string{"uppercase"}, nil, true},

		{"sufficient before", "before", []string{"suff"}, []want{{Warning, "suff", 1, "`account sufficient pam_succeed_if.so uid < 1000 quiet` (sufficient"}}, true},
		{"requisite before", "before", []string{"requisite"}, nil, true},
		{"common-account before", "before", []string{"common"}, []want{{Warning, "common-account", 2, "new_authtok_reqd=done"}}, true},
		{"jump over", "before", []string{"jump"}, []want{{Warning, "jump", 1, "success=2"}}, true},
		{"jump short", "before", []string{"jumpshort"}, nil, true},
		{"jump over a substack", "before", []string{"jumpsubstack"}, nil, true},
		{"sufficient in substack", "before", []string{"substack"}, nil, true},
		{"sufficient after", "before", []string{"after"}, nil, true},
		{"sufficient in auth", "before", []string{"auth"}, nil, true},

		{"su without seteuid", "su", []string{"su", "su-l"}, []want{{Error, "su", 2, "without `seteuid`"}}, true},
		// Issue 12, item 4: sudo is setuid root too; without seteuid the
		// caller can stop the hook past its deadline (a fail-open).
		{"sudo without seteuid", "su", []string{"sudo"}, []want{{Error, "sudo", 1, "without `seteuid`"}}, true},

		{"no quiet", "options", []string{"noquiet"}, []want{{Info, "noquiet", 1, "without `quiet`"}}, true},
		{"stdout", "options", []string{"stdout"}, []want{{Info, "stdout", 1, "shown to the person"}}, true},
		{"type=auth", "options", []string{"typeauth"}, []want{{Error, "typeauth", 1, "type=auth skips the hook"}}, true},
		{"type=account", "options", []string{"typeaccount"}, nil, true},
		{"missing hook", "options", []string{"missing"}, []want{{Error, "missing", 1, "/nonexistent/latch-check cannot run"}}, true},
		{"relative hook", "options", []string{"relative"}, []want{{Error, "relative", 1, "not an absolute path"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, hook := fixture(t, tc.dir)
			got, hooked := checkPAM(dir, tc.services, []string{hook})
			expect(t, got, tc.want...)
			if hooked[tc.services[0]] != tc.hooked {
				t.Errorf("hooked[%s] = %v, want %v", tc.services[0], hooked[tc.services[0]], tc.hooked)
			}
			if !reflect.DeepEqual(CheckPAM(dir, tc.services, []string{hook}), got) {
				t.Error("CheckPAM and checkPAM disagree")
			}
		})
	}
}

func TestCheckPAMHookFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to own the hook and chown it away")
	}
	for _, tc := range []struct {
		name  string
		setup func(hook string) error
		msg   string
	}{
		{"world writable", func(h string) error { return os.Chmod(h, 0o757) }, "group or world writable"},
		{"not root-owned", func(h string) error { return os.Chown(h, 65534, 0) }, "owned by uid 65534"},
		{"setuid", func(h string) error { return os.Chmod(h, os.ModeSetuid|0o755) }, "setuid or setgid"},
		{"not executable", func(h string) error { return os.Chmod(h, 0o644) }, "not an executable file"},
		{"writable directory", func(h string) error { return os.Chmod(filepath.Dir(h), 0o777) }, "which someone other than root can write"},
		// Issue 14: a sticky directory (like /tmp) is accepted above the
		// hook's directory, not as it: anyone may plant the hook there
		// before it exists, or a hard link to another root-owned program.
		{"sticky writable directory", func(h string) error { return os.Chmod(filepath.Dir(h), os.ModeSticky|0o777) }, "which someone other than root can write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, hook := fixture(t, "stacks")
			expect(t, CheckPAM(dir, []string{"required"}, nil)) // latch-check by name, clean
			if err := tc.setup(hook); err != nil {
				t.Fatal(err)
			}
			expect(t, CheckPAM(dir, []string{"required"}, nil), want{Error, "required", 1, tc.msg})
		})
	}
}

func TestLogicalLines(t *testing.T) {
	got := logicalLines("a \\\n\n# c\n  b # x\\\nc\\\r\nd\n   \n\\\n")
	w := []logicalLine{{1, "a  b "}, {5, "c d"}, {8, " "}}
	if !reflect.DeepEqual(got, w) {
		t.Errorf("got %+v, want %+v", got, w)
	}
}

func TestPAMFindingsAreClean(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sshd"), []byte("account include \x1b[2Jevil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range CheckPAM(dir, []string{"sshd"}, nil) {
		if strings.ContainsAny(f.String(), "\x1b\n") {
			t.Errorf("control character in %q", f.String())
		}
	}
}

func FuzzParsePAM(f *testing.F) {
	for _, s := range []string{"account required pam_exec.so quiet /x/latch-check\n", "@include x\n", "a [b\\\n c] d [e\\]f]\n# x\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data string) {
		p := pamParser{dir: dir, st: &PAMStack{}}
		p.parse("f", []byte(data), "", 0, []string{"f"})
		for _, l := range p.st.Lines {
			if l.Line < 1 || l.Module == "" || l.Control == "" {
				t.Fatalf("bad line %+v", l)
			}
		}
		checkStack(dir, p.st, nil)
	})
}
