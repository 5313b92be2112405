package users

import (
	"bytes"
	"strconv"
	"strings"
)

// The TOML decoder reports no positions for keys, and the editor must touch
// single lines, so both use this small line scanner. It understands just
// enough TOML to tell table headers from key/value lines and to skip the
// continuation lines of multi-line strings and arrays. It never decides what
// a file means: the real decoder does, and the editor double-checks every
// edit with it.

type lineKind int

const (
	lineOther    lineKind = iota // blank, comment, or something the scanner does not understand
	lineHeader                   // [table] or [[array-of-tables]]
	lineKeyValue                 // key = value
	lineCont                     // continuation of a multi-line value
)

// tomlLine is one physical line of a TOML document.
type tomlLine struct {
	num        int // 1-based
	start, end int // the line's bytes, without its line ending
	next       int // start of the next line
	kind       lineKind
	// path is the table path of a header, or the full path (table + key) of
	// a key/value line, or of the key whose value a continuation line
	// continues.
	path       []string
	arrayTable bool     // [[...]] header
	key        []string // key/value: the key relative to its table
	// valStart and valEnd delimit a key/value line's value on this line,
	// without surrounding blanks or a trailing comment.
	valStart, valEnd int
	open             bool // the value goes on past this line
}

// crlf reports whether the line ends with CR LF.
func (l tomlLine) crlf() bool { return l.next-l.end == 2 }

// valueState tracks a value across lines: an open multi-line string and
// the nesting of arrays and inline tables.
type valueState struct {
	quote byte // '"' or '\'' while inside a multi-line string
	depth int
}

func (s *valueState) open() bool { return s.quote != 0 || s.depth > 0 }

// scan reads line from i as (part of) a value and returns where the value
// ends on this line: at a comment or at the end of the line.
func (s *valueState) scan(line []byte, i int) int {
	for i < len(line) {
		c := line[i]
		if s.quote != 0 {
			delim := []byte{s.quote, s.quote, s.quote}
			switch {
			case c == '\\' && s.quote == '"':
				i += 2
			case bytes.HasPrefix(line[i:], delim):
				i += 3
				// Up to two quotes right before the closing delimiter
				// belong to the string: """a""""" is a"".
				for k := 0; k < 2 && i < len(line) && line[i] == s.quote; k++ {
					i++
				}
				s.quote = 0
			default:
				i++
			}
			continue
		}
		switch c {
		case '#':
			return i
		case '"', '\'':
			if bytes.HasPrefix(line[i:], []byte{c, c, c}) {
				s.quote = c
				i += 3
				continue
			}
			i, _ = skipString(line, i)
		case '[', '{':
			s.depth++
			i++
		case ']', '}':
			if s.depth > 0 {
				s.depth--
			}
			i++
		default:
			i++
		}
	}
	return min(i, len(line)) // an escape can skip past a trailing backslash
}

// skipString returns the offset just past the one-line string starting at
// line[i], or len(line) and false if the string is not closed.
func skipString(line []byte, i int) (int, bool) {
	q := line[i]
	for i++; i < len(line); i++ {
		switch {
		case line[i] == '\\' && q == '"':
			i++
		case line[i] == q:
			return i + 1, true
		}
	}
	return len(line), false
}

// scanLines splits data into lines and classifies them.
func scanLines(data []byte) []tomlLine {
	var (
		lines []tomlLine
		table []string
		owner []string // key of the value being continued
		st    valueState
	)
	for start, num := 0, 1; start < len(data); num++ {
		end, next := len(data), len(data)
		if nl := bytes.IndexByte(data[start:], '\n'); nl >= 0 {
			end, next = start+nl, start+nl+1
			if end > start && data[end-1] == '\r' {
				end--
			}
		}
		l := tomlLine{num: num, start: start, end: end, next: next}
		text := data[start:end]
		if st.open() {
			l.kind, l.path = lineCont, owner
			st.scan(text, 0)
		} else {
			classify(&l, text, table, &st)
			switch l.kind {
			case lineHeader:
				table = l.path
			case lineKeyValue:
				owner = l.path
			}
		}
		lines = append(lines, l)
		start = next
	}
	return lines
}

// classify fills in l for a line that starts outside any value.
func classify(l *tomlLine, text []byte, table []string, st *valueState) {
	i := skipBlank(text, 0)
	if i == len(text) || text[i] == '#' {
		return
	}
	if text[i] == '[' {
		array := i+1 < len(text) && text[i+1] == '['
		open := i + 1
		if array {
			open++
		}
		path, j, ok := parseKey(text, open)
		if !ok || j >= len(text) || text[j] != ']' || (array && (j+1 >= len(text) || text[j+1] != ']')) {
			return
		}
		l.kind, l.path, l.arrayTable = lineHeader, path, array
		return
	}
	key, j, ok := parseKey(text, i)
	if !ok || j >= len(text) || text[j] != '=' {
		return
	}
	j = skipBlank(text, j+1)
	end := st.scan(text, j)
	for end > j && (text[end-1] == ' ' || text[end-1] == '\t') {
		end--
	}
	l.kind, l.key = lineKeyValue, key
	l.path = append(append([]string(nil), table...), key...)
	l.valStart, l.valEnd = l.start+j, l.start+end
	l.open = st.open()
}

func skipBlank(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i
}

// parseKey parses a dotted key (bare, "basic" or 'literal' parts) at b[i]
// and returns its parts and the offset of the first byte after it and any
// following blanks.
func parseKey(b []byte, i int) (parts []string, next int, ok bool) {
	for {
		i = skipBlank(b, i)
		if i >= len(b) {
			return nil, i, false
		}
		var part string
		switch b[i] {
		case '"', '\'':
			end, closed := skipString(b, i)
			if !closed {
				return nil, i, false
			}
			part = string(b[i+1 : end-1])
			if b[i] == '"' {
				if u, err := strconv.Unquote(string(b[i:end])); err == nil {
					part = u
				}
			}
			i = end
		default:
			j := i
			for j < len(b) && isBareKeyByte(b[j]) {
				j++
			}
			if j == i {
				return nil, i, false
			}
			part, i = string(b[i:j]), j
		}
		parts = append(parts, part)
		i = skipBlank(b, i)
		if i >= len(b) || b[i] != '.' {
			return parts, i, true
		}
		i++
	}
}

func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// lineIndex maps key and table paths to the line that defines them.
type lineIndex struct {
	data  []byte
	lines []tomlLine
	first map[string]int // joined path -> line number of first definition
}

func indexLines(data []byte) *lineIndex {
	x := &lineIndex{data: data, lines: scanLines(data), first: map[string]int{}}
	for _, l := range x.lines {
		if l.kind != lineHeader && l.kind != lineKeyValue {
			continue
		}
		// Dotted keys and headers define their parents implicitly; a parent
		// keeps the line of its first mention.
		for n := 1; n <= len(l.path); n++ {
			k := joinPath(l.path[:n])
			if _, ok := x.first[k]; !ok {
				x.first[k] = l.num
			}
		}
	}
	return x
}

// line returns the line that defines path, else the line of its nearest
// known parent (an inline table, say), else 0.
func (x *lineIndex) line(path ...string) int {
	for n := len(path); n > 0; n-- {
		if num, ok := x.first[joinPath(path[:n])]; ok {
			return num
		}
	}
	return 0
}

// joinPath joins with NUL, which no key can make ambiguous in practice.
func joinPath(path []string) string { return strings.Join(path, "\x00") }
