package checkconfig

import (
	"context"
	"fmt"
	"os"

	"github.com/latch-ssh/latch-ssh/internal/sshserver"
)

// checkServer checks what the embedded SSH server needs on this machine
// when [server] listen is set: usable host keys (sshserver's own rules, as
// at start) and an sftp-server; and warns about settings that give up a
// protection.
func checkServer(ctx context.Context, r *run) []Finding {
	if r.cfg == nil {
		return nil
	}
	set := r.cfg.Server
	if set.Listen == "" {
		return nil
	}
	var out []Finding
	for _, p := range set.HostKey {
		exists, err := sshserver.CheckHostKey(p)
		switch {
		case err != nil:
			// The error carries its own "; fix: ...".
			out = append(out, r.finding(Error, []string{"server", "host_key"}, "[server] host_key: "+err.Error(), ""))
		case !exists:
			out = append(out, Finding{Severity: Note,
				Message: fmt.Sprintf("[server] host_key %s does not exist yet: serve generates an %s key there on first start", p, sshserver.GeneratedKeyType(p))})
		}
	}
	if set.SFTPServer != "" {
		if fi, err := os.Stat(set.SFTPServer); err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
			out = append(out, r.finding(Error, []string{"server", "sftp_server"},
				fmt.Sprintf("[server] sftp_server %s is not an executable file", set.SFTPServer),
				"install openssh-sftp-server, or correct the path"))
		}
	}
	if set.Recheck.Duration == 0 {
		out = append(out, r.finding(Warning, []string{"server", "recheck"},
			`[server] recheck = "0": closing a latch does not end sessions already open`,
			`recheck = "30s", the default`))
	}
	if set.AllowTCPForwarding {
		out = append(out, r.finding(Warning, []string{"server", "allow_tcp_forwarding"},
			"[server] allow_tcp_forwarding = true: authenticated users can reach any address this host can (keys with restrict or no-port-forwarding excepted)",
			"allow_tcp_forwarding = false, unless they need it"))
	}
	return append(out, checkStartups(r)...)
}

// checkStartups warns about admission settings that give back what they
// are for: sources that hold unauthenticated slots are never shut out, or
// everyone is exempt.
func checkStartups(r *run) []Finding {
	set := r.cfg.Server
	var out []Finding
	if set.PenaltyNoAuth.Duration == 0 && set.PenaltyAuthFail.Duration == 0 && set.PenaltyTimeout.Duration == 0 {
		out = append(out, r.finding(Warning, []string{"server", "penalty_noauth"},
			`[server] penalty_noauth, penalty_authfail and penalty_timeout are all "0": a few hosts can hold the unauthenticated slots again and again`,
			"remove them to get the defaults, 1s, 5s and 10s"))
	}
	for _, p := range set.PenaltyExempt {
		if p.Bits() == 0 {
			out = append(out, r.finding(Warning, []string{"server", "penalty_exempt"},
				fmt.Sprintf("[server] penalty_exempt has %s: every address of that family is exempt from penalties and early drop", p),
				"list only your admin hosts or networks"))
		}
	}
	if len(set.PenaltyExempt) == 0 {
		out = append(out, Finding{Severity: Note,
			Message: "[server] penalty_exempt is empty: when others fill max_unauthenticated, only sources that logged in within the last 24 hours have slots kept for them; list your admin hosts there"})
	}
	return out
}
