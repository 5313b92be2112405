package authkeys

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// parseFrom splits and checks a from= pattern list. Like sshd, an empty
// entry or a CIDR entry with host bits set (10.0.0.1/8) is an error, which
// we report at parse time (the key is skipped) instead of denying at login.
// Stricter than sshd: an entry with a '/' that is not a valid CIDR is an
// error too (sshd would treat it as a host name pattern that never matches).
func parseFrom(list string) ([]string, string) {
	pats := strings.Split(list, ",")
	// The reasons name the entry by its position, never by its text: they
	// are logged, and the file's content is not (see the package doc).
	for i, p := range pats {
		p = strings.TrimPrefix(p, "!")
		if p == "" {
			return nil, fmt.Sprintf("empty pattern (entry %d)", i+1)
		}
		if strings.Contains(p, "/") {
			pfx, err := netip.ParsePrefix(p)
			if err != nil || pfx.Addr().Zone() != "" {
				return nil, fmt.Sprintf("bad CIDR pattern (entry %d)", i+1)
			}
			if pfx.Masked() != pfx {
				return nil, fmt.Sprintf("CIDR pattern (entry %d) has bits set beyond its mask length", i+1)
			}
		}
	}
	return pats, ""
}

// AllowsFrom reports whether a client at addr, whose host name is host, may
// use the key, with sshd's from= semantics: the patterns are tried in turn;
// an entry starting with '!' that matches denies, whatever else matches;
// otherwise the key is allowed when some entry matches. An entry is a CIDR
// block (192.0.2.0/24, 2001:db8::/32) or a single address, matched against
// addr (an IPv4-mapped IPv6 address counts as IPv4), or a pattern with '*'
// (any run of characters) and '?' (any one character), matched against the
// address as text and, case-insensitively, against host.
//
// There is no reverse DNS lookup here, and the server passes host "" (like
// sshd with UseDNS no, the default): an empty host is replaced by the
// address text, so name patterns (*.example.com) never match, and a negated
// name pattern never denies. Host names in from= are only as trustworthy as
// the DNS that supplies them; do not rely on them.
//
// With no From patterns every source is allowed. A nil or invalid addr is
// denied when there are patterns.
func (o Options) AllowsFrom(addr net.IP, host string) bool {
	if len(o.From) == 0 {
		return true
	}
	ip, ok := netip.AddrFromSlice(addr)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	ipText := ip.String()
	if host == "" {
		host = ipText
	}
	host = strings.ToLower(host)
	allowed := false
	for _, p := range o.From {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		if entryMatches(p, ip, ipText, host) {
			if neg {
				return false
			}
			allowed = true
		}
	}
	return allowed
}

// entryMatches matches one from= entry (without its '!').
func entryMatches(p string, ip netip.Addr, ipText, host string) bool {
	if strings.Contains(p, "/") {
		pfx, err := netip.ParsePrefix(p)
		return err == nil && pfx.Contains(ip)
	}
	if a, err := netip.ParseAddr(p); err == nil && a.Zone() == "" {
		return a.Unmap() == ip
	}
	lp := strings.ToLower(p)
	return wildcardMatch(lp, ipText) || wildcardMatch(lp, host)
}

// wildcardMatch reports whether s matches pattern, where '*' matches any
// run of bytes and '?' any one byte. It backtracks only to the last '*', so
// it runs in O(len(pattern)*len(s)) time, unlike a naive recursive matcher.
func wildcardMatch(pattern, s string) bool {
	p, i := 0, 0
	star, mark := -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			mark++
			p, i = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
