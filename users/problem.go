package users

import (
	"fmt"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration file, located as closely
// as the file allows and paired with the edit that fixes it.
type Problem struct {
	File string
	// Line is 1-based; 0 means the problem has no line of its own (a
	// required key missing from a table that is absent, say).
	Line int
	// Key is the dotted key path the problem is about, e.g.
	// "policy.fail_mode"; empty for a syntax error.
	Key     string
	Message string
	Fix     string
}

// Error formats the problem as "file:line: key: message (fix: ...)",
// leaving out the parts that are empty ("line N: ..." without a file).
func (p Problem) Error() string {
	var b strings.Builder
	switch {
	case p.File == "" && p.Line > 0:
		fmt.Fprintf(&b, "line %d: ", p.Line)
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		b.WriteString(p.File + ": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Message)
	if p.Fix != "" {
		b.WriteString(" (fix: " + p.Fix + ")")
	}
	return b.String()
}

// Problems is every problem found in one file, in line order. Parse and
// Load return it as their error; use errors.As to get at the list.
type Problems []Problem

// Error prints one problem per line.
func (ps Problems) Error() string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Error()
	}
	return strings.Join(s, "\n")
}

// displayKey writes a key path the way TOML would: bare parts as they are,
// others quoted.
func displayKey(path []string) string {
	s := make([]string, len(path))
	for i, p := range path {
		s[i] = p
		if !isBareKey(p) {
			s[i] = strconv.Quote(p)
		}
	}
	return strings.Join(s, ".")
}

func isBareKey(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBareKeyByte(s[i]) {
			return false
		}
	}
	return s != ""
}

// show quotes a value from the file for a message: control characters
// escaped (messages reach terminals and logs) and long values cut.
func show(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}

// suggest returns the candidate closest to s when it is a plausible typo.
func suggest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist && d <= len(c)/3+1 {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
