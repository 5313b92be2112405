// Package helptext prints the flag lists of latch-ssh's and latch-check's
// --help the way their usage lines spell the flags: "--user", "--json",
// and "-c" for the one-letter flags (issue 13, point 5). Go's flag package
// accepts -user and --user alike, but its PrintDefaults lists "-user",
// which disagreed with every usage line and man page.
package helptext

import (
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
)

// Dashes is the spelling of the flag name: "-c" for a one-letter flag,
// "--name" for the others.
func Dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// PrintFlags writes every flag of fs to w, as flag.PrintDefaults does but
// with the names spelled by Dashes.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		var b strings.Builder
		arg, usage := flag.UnquoteUsage(f)
		b.WriteString("  " + Dashes(f.Name))
		if arg != "" {
			b.WriteString(" " + arg)
		}
		b.WriteString("\n    \t")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n    \t"))
		if def := f.DefValue; def != "" && def != "false" && def != "0" {
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					def = fmt.Sprintf("%q", def)
				}
			}
			b.WriteString(" (default " + def + ")")
		}
		fmt.Fprintln(w, b.String())
	})
}

var (
	// usageFlag is a flag in a usage line: "[--user USER]", "[-c FILE]".
	usageFlag = regexp.MustCompile(`\[(--?[a-z][a-z0-9-]*)(?: ([A-Z][A-Z_]*))?\]`)
	// listedFlag is a flag as PrintFlags lists it.
	listedFlag = regexp.MustCompile(`(?m)^  (--?[a-z][a-z0-9-]*)(?: ([A-Z][A-Z_]*))?$`)
)

// Mismatch compares the usage lines of a --help text (the lines that start
// with "usage:", and those indented under them) with its flag list, and
// returns what one has and the other lacks ("--json listed, not in the
// usage line"); nil when they agree. The tests of every command's --help
// use it.
func Mismatch(help string) []string {
	var usage strings.Builder
	inUsage := false
	for _, l := range strings.Split(help, "\n") {
		switch {
		case strings.HasPrefix(l, "usage:"):
			inUsage = true
		case inUsage && strings.HasPrefix(l, "       "):
		default:
			inUsage = false
		}
		if inUsage {
			usage.WriteString(l + "\n")
		}
	}
	inLine := map[string]bool{}
	for _, m := range usageFlag.FindAllStringSubmatch(usage.String(), -1) {
		inLine[strings.TrimSpace(m[1]+" "+m[2])] = true
	}
	listed := map[string]bool{}
	for _, m := range listedFlag.FindAllStringSubmatch(help, -1) {
		listed[strings.TrimSpace(m[1]+" "+m[2])] = true
	}
	var out []string
	for f := range listed {
		if !inLine[f] {
			out = append(out, f+" listed, not in the usage line")
		}
	}
	for f := range inLine {
		if !listed[f] {
			out = append(out, f+" in the usage line, not listed")
		}
	}
	sort.Strings(out)
	return out
}
