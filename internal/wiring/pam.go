package wiring

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// PAMLine is one module line of a service's PAM configuration, after
// includes are resolved. Lines are listed in the order Linux-PAM runs them.
type PAMLine struct {
	File string // the file the line is written in
	Line int    // 1-based; for a continued line, where it starts
	Type string // auth, account, password or session, lower case
	// Dash is a leading '-' on the type: Linux-PAM does not log a missing
	// module. It does not change how the line decides.
	Dash bool
	// Control is required, requisite, sufficient, optional, substack, or a
	// bracket control as written ("[success=1 default=ignore]").
	Control string
	// Actions is the parsed bracket control: value -> action, lower case.
	// Nil for the simple controls.
	Actions map[string]string
	// Module is the module path as written; for Control "substack", the
	// file of the substack, whose lines follow with Level+1.
	Module string
	Args   []string
	// Level is the substack depth: 0 for the service's own stack. A "done"
	// or a jump inside a substack never reaches past its end.
	Level int
}

// PAMStack is the resolved configuration of one PAM service.
type PAMStack struct {
	Service string
	Lines   []PAMLine
	// Problems are lines Linux-PAM cannot use: a missing or looping include,
	// an unknown type or control. Linux-PAM turns each into a module that
	// always fails, so they mean locked-out users, and are Errors.
	Problems []Finding
}

// maxIncludeDepth is Linux-PAM's PAM_SUBSTACK_MAX_LEVEL: deeper includes
// fail the stack.
const maxIncludeDepth = 16

// ParsePAMService reads dir/service and everything it includes
// (`@include FILE`, and the type-specific `include` and `substack`
// controls). The error is only for the service file itself (wrapping
// fs.ErrNotExist when it is absent); trouble in included files is reported
// in Problems, never by a panic or an endless loop.
//
// It follows Linux-PAM's reader: '#' starts a comment anywhere on a line and
// ends the logical line; a backslash at the end of a line joins the next
// non-blank, non-comment line; types and controls are case-insensitive.
func ParsePAMService(dir, service string) (*PAMStack, error) {
	if service == "" || service == "." || service == ".." || strings.ContainsAny(service, "/\x00") {
		return nil, fmt.Errorf("invalid PAM service name %q", clean(service))
	}
	path := filepath.Join(dir, service)
	data, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	p := pamParser{dir: dir, st: &PAMStack{Service: service}}
	p.parse(path, data, "", 0, []string{path})
	return p.st, nil
}

// readSmall reads at most 1 MiB: PAM and sshd files are tiny, and a FIFO or
// a huge file must not hang or exhaust check-config.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", clean(path))
	}
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

type pamParser struct {
	dir string
	st  *PAMStack
}

func (p *pamParser) problem(file string, line int, msg, fix string) {
	p.st.Problems = append(p.st.Problems, Finding{Severity: Error, File: clean(file), Line: line,
		Message: msg + ": Linux-PAM fails the stack, so logins through it are refused", Fix: fix})
}

// include reads name (relative to the pam.d directory unless absolute),
// keeping only lines of type only ("" for all), at substack depth level.
func (p *pamParser) include(from string, line int, name, only string, level int, chain []string) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(p.dir, name)
	}
	if slices.Contains(chain, path) {
		loop := make([]string, 0, len(chain)+1)
		for _, c := range append(chain, path) {
			loop = append(loop, clean(filepath.Base(c)))
		}
		p.problem(from, line, "include loop "+strings.Join(loop, " -> "), "remove the include that closes the loop")
		return
	}
	if len(chain) > maxIncludeDepth {
		p.problem(from, line, "includes nested deeper than 16 levels", "flatten the includes")
		return
	}
	data, err := readSmall(path)
	if err != nil {
		p.problem(from, line, "cannot read included file: "+clean(err.Error()), "create the file or remove the include")
		return
	}
	p.parse(path, data, only, level, append(slices.Clip(chain), path))
}

func (p *pamParser) parse(file string, data []byte, only string, level int, chain []string) {
	for _, ll := range logicalLines(string(data)) {
		typ, rest := field(ll.text)
		if typ == "@include" {
			name, _ := field(rest)
			if name == "" {
				p.problem(file, ll.n, "@include without a file", "name the file or remove the line")
				continue
			}
			p.include(file, ll.n, name, only, level, chain)
			continue
		}
		l := PAMLine{File: file, Line: ll.n, Level: level}
		l.Dash = strings.HasPrefix(typ, "-")
		l.Type = strings.ToLower(strings.TrimPrefix(typ, "-"))
		switch l.Type {
		case "auth", "account", "password", "session":
		default:
			p.problem(file, ll.n, fmt.Sprintf("unknown PAM type %q", clean(typ)), "use auth, account, password or session")
			continue
		}
		if only != "" && l.Type != only {
			continue
		}
		l.Control, rest = controlField(rest)
		l.Module, rest = field(rest)
		if l.Control == "" || l.Module == "" {
			p.problem(file, ll.n, "incomplete line (type, control and module are required)", "complete or remove the line")
			continue
		}
		l.Args = splitArgs(rest)
		switch c := strings.ToLower(l.Control); {
		case c == "include":
			p.include(file, ll.n, l.Module, l.Type, level, chain)
			continue
		case c == "substack":
			l.Control = c
			p.st.Lines = append(p.st.Lines, l)
			p.include(file, ll.n, l.Module, l.Type, level+1, chain)
			continue
		case c == "required" || c == "requisite" || c == "sufficient" || c == "optional":
			l.Control = c
		case strings.HasPrefix(c, "["):
			l.Actions = parseActions(c)
		default:
			p.problem(file, ll.n, fmt.Sprintf("unknown control %q", clean(l.Control)), "use required, requisite, sufficient, optional or [value=action ...]")
			continue
		}
		p.st.Lines = append(p.st.Lines, l)
	}
}

type logicalLine struct {
	n    int
	text string
}

// logicalLines joins continued lines and drops comments the way Linux-PAM's
// _pam_assemble_line does.
func logicalLines(data string) []logicalLine {
	var out []logicalLine
	var cur strings.Builder
	start, open := 0, false
	flush := func() {
		out = append(out, logicalLine{start, cur.String()})
		cur.Reset()
		open = false
	}
	for i, raw := range strings.Split(data, "\n") {
		s := strings.TrimLeft(raw, " \t")
		if s == "" || s[0] == '#' || strings.TrimSpace(s) == "" {
			continue // blank or comment: a pending continuation goes on
		}
		if !open {
			start, open = i+1, true
		}
		if j := strings.IndexByte(s, '#'); j >= 0 {
			cur.WriteString(s[:j])
			flush()
			continue
		}
		s = strings.TrimRight(s, " \t\r")
		if strings.HasSuffix(s, `\`) {
			cur.WriteString(s[:len(s)-1] + " ")
			continue
		}
		cur.WriteString(s)
		flush()
	}
	if open {
		flush()
	}
	return out
}

func isSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' }

// field splits off the first whitespace-separated word.
func field(s string) (word, rest string) {
	s = strings.TrimLeftFunc(s, isSpace)
	if i := strings.IndexFunc(s, isSpace); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// controlField reads a control, which is one word or a bracket group that
// may hold spaces.
func controlField(s string) (control, rest string) {
	s = strings.TrimLeftFunc(s, isSpace)
	if strings.HasPrefix(s, "[") {
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return "", ""
		}
		return s[:i+1], s[i+1:]
	}
	return field(s)
}

// parseActions reads "[success=1 default=ignore]".
func parseActions(c string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Fields(strings.Trim(c, "[]")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// splitArgs splits module arguments; "[a b\]c]" is one argument "a b]c",
// as in Linux-PAM.
func splitArgs(s string) []string {
	var out []string
	for {
		s = strings.TrimLeftFunc(s, isSpace)
		if s == "" {
			return out
		}
		if s[0] != '[' {
			var w string
			w, s = field(s)
			out = append(out, w)
			continue
		}
		var b strings.Builder
		i := 1
		for ; i < len(s) && s[i] != ']'; i++ {
			if s[i] == '\\' && i+1 < len(s) && s[i+1] == ']' {
				i++
			}
			b.WriteByte(s[i])
		}
		out = append(out, b.String())
		s = s[min(i+1, len(s)):]
	}
}

// action is what a bracket control does with a PAM return value: the
// explicit entry, else default=, else "bad" (Linux-PAM's own default).
func action(actions map[string]string, value string) string {
	if a, ok := actions[value]; ok {
		return a
	}
	if a, ok := actions["default"]; ok {
		return a
	}
	return "bad"
}
