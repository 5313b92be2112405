package users

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

var (
	// namePattern is the rule for user and group names: what useradd
	// accepts by default, less the trailing "$" of Samba machine accounts.
	namePattern    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)
	servicePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$`)
	versionPattern = regexp.MustCompile(`^[0-9]+\.[0-9]+$`)
)

const nameRule = `use 1 to 32 letters, digits, "_", "." or "-", not starting with "." or "-"`

// idKind describes one kind of Latch identifier for validation messages.
type idKind struct {
	length int
	what   string // for "X is still the placeholder: put WHAT here"
	fix    string
	secret bool // never echo the value
}

var (
	appIDKind = idKind{20, "your Latch application id from the Latch developer area",
		"copy the application id from your application's page in the Latch developer area", false}
	secretKind = idKind{40, "your application's secret from the Latch developer area",
		"copy the secret from your application's page in the Latch developer area", true}
	operationKind = idKind{20, "the operation id from the Latch developer area",
		"copy the operation id from your application's operations in the Latch developer area", false}
	accountKind = idKind{64, "the account id that pairing returned",
		"pair the user again with: latch-ssh pair --user NAME TOKEN", false}
)

// Parse decodes and validates the configuration in data; file names it in
// problems. It reads no files: with secret_file, Config.Secret stays "",
// and neither secret_file nor ca_file is checked to exist. Use Load for the
// real thing. The error lists every problem found, as Problems.
func Parse(file string, data []byte) (*Config, error) {
	cfg, probs := parse(file, data)
	if len(probs) > 0 {
		return nil, probs
	}
	return cfg, nil
}

// parse is Parse that also returns what did parse when there are
// problems: the entries with a problem are left out, and the Config is
// nil only when data is not TOML. Only Inspect uses the partial Config,
// to report what else is wrong; nothing decides with it.
func parse(file string, data []byte) (*Config, Problems) {
	cfg, c := parseSources([]source{{file: file, data: data}})
	return cfg, c.probs
}

// source is one file of a configuration: the main file or a drop-in.
type source struct {
	file string
	data []byte
	idx  *lineIndex
}

// parseSources decodes every source, merges them (see merge) and validates
// the result as one configuration, the main file first. The Config is nil
// when a source is not TOML. The checker it returns locates keys in the
// sources (locate) and holds the problems, sorted by file then line.
func parseSources(srcs []source) (*Config, *checker) {
	c := &checker{srcs: srcs, origin: map[string]int{}, homeOf: map[string]string{}}
	merged := map[string]any{}
	decoded := true
	for i := range srcs {
		if srcs[i].idx == nil {
			srcs[i].idx = indexLines(srcs[i].data)
		}
		var raw map[string]any
		if _, err := toml.Decode(string(srcs[i].data), &raw); err != nil {
			c.syntax(i, err)
			decoded = false
			continue
		}
		c.merge(merged, raw, nil, i)
	}
	if !decoded {
		return nil, c
	}
	root := &table{c: c, m: merged}
	cfg := &Config{Path: srcs[0].file}
	for _, s := range srcs {
		cfg.Files = append(cfg.Files, s.file)
	}
	c.latch(root.sub("latch"), &cfg.Latch)
	c.policy(root.sub("policy"), &cfg.Policy)
	cfg.Operations = c.serviceMap(root.sub("operations"))
	users := root.sub("users")
	cfg.Users = c.users(users)
	cfg.UserSources = map[string]Source{}
	for u := range cfg.Users {
		file, line := c.locate([]string{"users", u})
		cfg.UserSources[u] = Source{File: file, Line: line}
	}
	cfg.UserOperations = c.userOperations(root.sub("user_operations"), users.m)
	cfg.Instances, cfg.InstanceAccounts = c.instanceTable(root.sub("instances"))
	cfg.InstanceSources = map[string]Source{}
	for u := range cfg.Instances {
		file, line := c.locate([]string{"instances", u})
		cfg.InstanceSources[u] = Source{File: file, Line: line}
	}
	c.daemon(root.sub("daemon"), &cfg.Daemon)
	c.server(root.sub("server"), &cfg.Server)
	c.metrics(root.sub("metrics"), &cfg.Metrics)
	root.finish()
	c.sortProblems()
	return cfg, c
}

// checker collects problems while the tables are validated.
type checker struct {
	srcs []source
	// origin maps a joined key or table path (joinPath) to the source
	// that set it; a table set in several sources keeps the first.
	origin map[string]int
	probs  Problems
	homeOf map[string]string // known key -> its table, to place misplaced keys
}

// locate returns the file and line that define path: the source that set
// it (or its nearest parent), else the main file; the line is 0 when that
// file has none for it.
func (c *checker) locate(path []string) (string, int) {
	for n := len(path); n > 0; n-- {
		if i, ok := c.origin[joinPath(path[:n])]; ok {
			return c.srcs[i].file, c.srcs[i].idx.line(path...)
		}
	}
	return c.srcs[0].file, c.srcs[0].idx.line(path...)
}

// sortProblems orders the problems by source, then by line.
func (c *checker) sortProblems() {
	order := map[string]int{}
	for i := len(c.srcs) - 1; i >= 0; i-- {
		order[c.srcs[i].file] = i
	}
	slices.SortStableFunc(c.probs, func(a, b Problem) int {
		if d := order[a.File] - order[b.File]; d != 0 {
			return d
		}
		return a.Line - b.Line
	})
}

func (c *checker) report(path []string, msg, fix string) {
	file, line := c.locate(path)
	c.probs = append(c.probs, Problem{File: file, Line: line, Key: displayKey(path), Message: msg, Fix: fix})
}

// syntax turns a TOML decoding error into a problem. The decoder quotes
// parts of the offending value, so an error on the secret's line says
// only where it is.
func (c *checker) syntax(src int, err error) {
	p := Problem{File: c.srcs[src].file, Message: "cannot read the file: " + err.Error()}
	var pe toml.ParseError
	if errors.As(err, &pe) {
		p.Line, p.Message = pe.Position.Line, "TOML syntax error: "+pe.Message
		p.Fix = `correct the syntax: strings in "double quotes", [table] headers, one key = value per line`
		if c.srcs[src].idx.secretLine(p.Line) {
			p.Message = "TOML syntax error on the secret's line (details hidden so the secret is not shown)"
		}
	}
	c.probs = append(c.probs, p)
}

// secretLine reports whether line n mentions a secret or continues the
// value of a key named secret.
func (x *lineIndex) secretLine(n int) bool {
	if n < 1 || n > len(x.lines) {
		return true // unknown line: be safe
	}
	l := x.lines[n-1]
	text := x.data[l.start:l.end]
	return bytes.Contains(bytes.ToLower(text), []byte("secret")) ||
		len(l.path) > 0 && strings.Contains(strings.ToLower(l.path[len(l.path)-1]), "secret")
}

// checkID reports unless v is a Latch identifier of kind k.
func (c *checker) checkID(path []string, v string, k idKind) bool {
	switch {
	case isPlaceholder(v):
		c.report(path, fmt.Sprintf("%s is still the placeholder: put %s here", path[len(path)-1], k.what), k.fix)
	case isID(v, k.length):
		return true
	case k.secret && len(v) != k.length:
		c.report(path, fmt.Sprintf("must be exactly %d letters and digits; this one has %d characters", k.length, len(v)), k.fix)
	case k.secret:
		c.report(path, fmt.Sprintf("must be exactly %d letters and digits; this one has other characters (a space or quote copied by mistake?)", k.length), k.fix)
	default:
		c.report(path, fmt.Sprintf("must be exactly %d letters and digits, not %s (%d characters)", k.length, show(v), len(v)), k.fix)
	}
	return false
}

// isID reports whether v is n ASCII letters and digits, the shape of every
// Latch identifier and secret.
func isID(v string, n int) bool {
	if len(v) != n {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// isPlaceholder recognises the values the example file ships with and
// other obvious stand-ins, so the admin is told to fill them in rather than
// that their length is wrong.
func isPlaceholder(v string) bool {
	return strings.HasPrefix(strings.ToUpper(v), "REPLACE_WITH") || strings.Contains(v, "...") ||
		strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">")
}

func (c *checker) checkName(path []string, name, what string) bool {
	if namePattern.MatchString(name) {
		return true
	}
	c.report(path, fmt.Sprintf("%s is not a valid %s name", show(name), what), nameRule)
	return false
}

func (c *checker) checkAbs(path []string, p string) {
	if p != "" && !filepath.IsAbs(p) {
		c.report(path, fmt.Sprintf("%s is not an absolute path", show(p)), "write the full path, starting with /")
	}
}

func (c *checker) latch(t *table, l *Latch) {
	if !t.has("app_id") {
		t.report("app_id", "the Latch application id is missing", `add app_id = "..." with `+appIDKind.what)
	} else if v, ok := t.str("app_id", ""); ok && c.checkID(t.key("app_id"), v, appIDKind) {
		l.AppID = v
	}
	secret, secretOK := t.str("secret", "")
	file, fileOK := t.str("secret_file", "")
	switch {
	case t.has("secret") && t.has("secret_file"):
		t.report("secret", "both secret and secret_file are set", "keep one of them")
	case !t.has("secret") && !t.has("secret_file"):
		t.report("secret", "the application secret is missing",
			`add secret = "..." (40 characters) or secret_file = "/etc/latch-ssh/secret" to [latch]`)
	case t.has("secret"):
		if secretOK && c.checkID(t.key("secret"), secret, secretKind) {
			l.Secret = Secret(secret)
		}
	case fileOK && (file == "" || !filepath.IsAbs(file)):
		t.report("secret_file", fmt.Sprintf("%s is not an absolute path", show(file)), "write the full path of the file holding the secret, starting with /")
	default:
		l.SecretFile = file
	}
	l.APIURL = c.apiURL(t)
	l.APIVersion, _ = t.str("api_version", "3.0")
	if !versionPattern.MatchString(l.APIVersion) {
		t.report("api_version", fmt.Sprintf("%s is not an API version like \"3.0\"", show(l.APIVersion)), `api_version = "3.0"`)
	}
	l.Timeout = t.duration("timeout", DefaultTimeout, 100*time.Millisecond, time.Minute, false)
	l.CAFile, _ = t.str("ca_file", "")
	c.checkAbs(t.key("ca_file"), l.CAFile)
	l.Proxy, _ = t.str("proxy", "")
	if l.Proxy != "" {
		// The proxy URL may hold a password: never echo it.
		u, err := url.Parse(l.Proxy)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			t.report("proxy", "is not a proxy URL like http://proxy.example:3128", "write http://host:port or https://host:port, nothing after the port")
		}
	}
	c.instances(t, l)
	t.finish()
}

// apiURL returns [latch] api_url normalised to https://host[:port].
func (c *checker) apiURL(t *table) string {
	s, _ := t.str("api_url", DefaultAPIURL)
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Hostname() == "" || u.Opaque != "":
		t.report("api_url", "is not a URL like "+DefaultAPIURL, "api_url = "+strconv.Quote(DefaultAPIURL))
	case u.Scheme != "https":
		t.report("api_url", "must use https://: Latch answers decide logins and must come over TLS", "api_url = "+strconv.Quote("https://"+u.Host))
	case u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		t.report("api_url", "must be just https://host[:port], with no user, path or query", "api_url = "+strconv.Quote("https://"+u.Host))
	default:
		return "https://" + u.Host
	}
	return ""
}

func (c *checker) policy(t *table, p *Policy) {
	const failFix = `fail_mode = "closed" denies logins when Latch cannot be reached; fail_mode = "open" allows them`
	if !t.has("fail_mode") {
		t.report("fail_mode", `is required: it decides whether logins are allowed ("open") or denied ("closed") when Latch cannot answer`,
			`add fail_mode = "closed" (or "open") under [policy]`)
	}
	p.FailMode = FailMode(t.enum("fail_mode", "", failFix, string(FailOpen), string(FailClosed)))
	p.Unpaired = Unpaired(t.enum("unpaired", string(UnpairedAllow), "", string(UnpairedAllow), string(UnpairedDeny)))
	p.End = End(t.enum("end", string(EndSession), "", string(EndSession), string(EndUser)))
	p.OTP = OTP(t.enum("otp", string(OTPPrompt), "", string(OTPPrompt), string(OTPNever)))
	p.ExemptGroups = t.list("exempt_groups", []string{})
	for _, g := range p.ExemptGroups {
		c.checkName(t.key("exempt_groups"), g, "group")
	}
	p.Silent = t.boolean("silent", false)
	p.AllowSelfPairing = t.boolean("allow_self_pairing", false)
	p.PairCommonName = t.boolean("pair_common_name", true)
	p.PairingFile = c.pairingFile(t)
	t.finish()
}

// serviceMap validates a service -> operation id table ([operations] or
// one [user_operations.USER]).
func (c *checker) serviceMap(t *table) map[string]string {
	ops := map[string]string{}
	for _, svc := range slices.Sorted(maps.Keys(t.m)) {
		if !servicePattern.MatchString(svc) {
			t.report(svc, fmt.Sprintf("%s is not a valid service name", show(svc)),
				`use the PAM service name ("sshd", "sudo"; the ForceCommand gate decides as "sshd") or "server" for the embedded server`)
		}
		if op, ok := t.str(svc, ""); ok && c.checkID(t.key(svc), op, operationKind) {
			ops[svc] = op
		}
	}
	return ops
}

func (c *checker) users(t *table) map[string]string {
	users := map[string]string{}
	for _, u := range slices.Sorted(maps.Keys(t.m)) {
		okName := c.checkName(t.key(u), u, "user")
		if acct, ok := t.str(u, ""); ok && c.checkID(t.key(u), acct, accountKind) && okName {
			users[u] = acct
		}
	}
	return users
}

// userOperations reads [user_operations]; users is the raw [users] table, so
// that a user with a bad account id is not also reported missing here.
func (c *checker) userOperations(t *table, users map[string]any) map[string]map[string]string {
	uops := map[string]map[string]string{}
	for _, u := range slices.Sorted(maps.Keys(t.m)) {
		if !c.checkName(t.key(u), u, "user") {
			continue
		}
		if _, ok := users[u]; !ok {
			t.report(u, fmt.Sprintf("%s is not in [users]", show(u)),
				fmt.Sprintf("pair the user first (latch-ssh pair --user %s TOKEN) or remove [user_operations.%s]", u, displayKey([]string{u})))
		}
		uops[u] = c.serviceMap(t.sub(u))
	}
	return uops
}

func (c *checker) daemon(t *table, d *Daemon) {
	d.Socket, _ = t.str("socket", DefaultSocket)
	c.checkAbs(t.key("socket"), d.Socket)
	if d.Socket == "" {
		t.report("socket", "is empty", fmt.Sprintf("socket = %q", DefaultSocket))
	}
	d.RateLimit = t.integer("rate_limit", 10, 1, 10000)
	t.finish()
}

func (c *checker) server(t *table, s *Server) {
	s.Listen, _ = t.str("listen", "")
	if s.Listen != "" {
		_, port, err := net.SplitHostPort(s.Listen)
		if n, perr := strconv.ParseUint(port, 10, 16); err != nil || perr != nil || strconv.FormatUint(n, 10) != port {
			t.report("listen", fmt.Sprintf("%s is not host:port", show(s.Listen)), `listen = "0.0.0.0:2222" (or "" to turn the embedded server off)`)
		}
	}
	s.HostKey = t.list("host_key", []string{"/etc/latch-ssh/ssh_host_ed25519_key"})
	for _, k := range s.HostKey {
		c.checkAbs(t.key("host_key"), k)
	}
	if s.Listen != "" && len(s.HostKey) == 0 {
		t.report("host_key", "is empty but the embedded server is on", `host_key = ["/etc/latch-ssh/ssh_host_ed25519_key"]`)
	}
	s.AuthorizedKeys, _ = t.str("authorized_keys", "%h/.ssh/authorized_keys")
	c.checkPattern(t, s.AuthorizedKeys)
	s.Recheck = t.duration("recheck", 30*time.Second, time.Second, 24*time.Hour, true)
	s.AllowTCPForwarding = t.boolean("allow_tcp_forwarding", false)
	s.LoginGraceTime = t.duration("login_grace_time", 2*time.Minute, time.Second, time.Hour, false)
	s.MaxAuthTries = t.integer("max_auth_tries", 6, 1, 100)
	s.MaxUnauthenticated = t.integer("max_unauthenticated", 100, 1, 100000)
	c.startups(t, s)
	s.HandshakeTimeout = t.duration("handshake_timeout", 20*time.Second, time.Second, 10*time.Minute, false)
	c.penalties(t, s)
	s.SFTPServer, _ = t.str("sftp_server", "")
	c.checkAbs(t.key("sftp_server"), s.SFTPServer)
	t.finish()
}

// metrics reads [metrics]. The listen address is checked as strictly as
// [server] listen, and its port may not be 0 (Prometheus must know where
// to scrape); whether it is reachable from outside this host is
// check-config's warning, not an error. The textfile must be an absolute
// path ending in .prom, the only files node_exporter's textfile collector
// reads.
func (c *checker) metrics(t *table, m *Metrics) {
	m.Listen, _ = t.str("listen", "")
	if m.Listen != "" {
		host, port, err := net.SplitHostPort(m.Listen)
		n, perr := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil || perr != nil || strconv.FormatUint(n, 10) != port || n == 0:
			t.report("listen", fmt.Sprintf("%s is not host:port with a port from 1 to 65535", show(m.Listen)),
				`listen = "127.0.0.1:9469" (or "" to turn the metrics endpoint off)`)
		case host == "":
			t.report("listen", fmt.Sprintf("%s has no host: it would serve every address of this host", show(m.Listen)),
				`listen = "127.0.0.1:9469" (write "0.0.0.0:9469" if every address is really meant)`)
		}
	}
	m.Textfile, _ = t.str("textfile", "")
	if m.Textfile != "" {
		switch {
		case !filepath.IsAbs(m.Textfile):
			t.report("textfile", fmt.Sprintf("%s is not an absolute path", show(m.Textfile)),
				`textfile = "/var/lib/prometheus/node-exporter/latch_ssh.prom"`)
		case filepath.Ext(m.Textfile) != ".prom" || filepath.Base(m.Textfile) == ".prom" || filepath.Clean(m.Textfile) != m.Textfile:
			t.report("textfile", fmt.Sprintf("%s must be a clean path to a file whose name ends in .prom (node_exporter reads only those)", show(m.Textfile)),
				`textfile = "/var/lib/prometheus/node-exporter/latch_ssh.prom"`)
		}
	}
	t.finish()
}

// startups reads the per-source cap and the random early drop of
// unauthenticated connections. Their defaults follow max_unauthenticated
// down when it is small, so that lowering it alone stays valid; a value
// written above it is an error, since it could never apply.
func (c *checker) startups(t *table, s *Server) {
	n := s.MaxUnauthenticated
	s.MaxUnauthenticatedPerSource = t.integer("max_unauthenticated_per_source", min(10, max(1, n/4)), 1, 100000)
	if s.MaxUnauthenticatedPerSource > n {
		t.report("max_unauthenticated_per_source", fmt.Sprintf("%d is above max_unauthenticated (%d)", s.MaxUnauthenticatedPerSource, n),
			fmt.Sprintf("max_unauthenticated_per_source = %d (or less: a few sources must not fill the server)", max(1, n/4)))
	}
	s.EarlyDropStart = t.integer("early_drop_start", min(10, n), 1, 100000)
	if s.EarlyDropStart > n {
		t.report("early_drop_start", fmt.Sprintf("%d is above max_unauthenticated (%d)", s.EarlyDropStart, n),
			fmt.Sprintf("early_drop_start = %d (equal to max_unauthenticated turns early drop off)", n))
	}
	s.EarlyDropRate = t.integer("early_drop_rate", 30, 0, 100)
}

// penalties reads the per-source penalties.
func (c *checker) penalties(t *table, s *Server) {
	s.PenaltyNoAuth = t.duration("penalty_noauth", time.Second, time.Second, time.Hour, true)
	s.PenaltyAuthFail = t.duration("penalty_authfail", 5*time.Second, time.Second, time.Hour, true)
	s.PenaltyTimeout = t.duration("penalty_timeout", 10*time.Second, time.Second, time.Hour, true)
	s.PenaltyMin = t.duration("penalty_min", 15*time.Second, time.Second, time.Hour, true)
	s.PenaltyMax = t.duration("penalty_max", 10*time.Minute, time.Second, 24*time.Hour, false)
	if s.PenaltyMin.Duration >= s.PenaltyMax.Duration && t.has("penalty_min") {
		t.report("penalty_min", fmt.Sprintf("%s is not below penalty_max (%s): no penalty could ever apply",
			shortDuration(s.PenaltyMin.Duration), shortDuration(s.PenaltyMax.Duration)), `penalty_min = "15s"`)
	} else if s.PenaltyMin.Duration >= s.PenaltyMax.Duration {
		t.report("penalty_max", fmt.Sprintf("%s is not above penalty_min (%s): no penalty could ever apply",
			shortDuration(s.PenaltyMax.Duration), shortDuration(s.PenaltyMin.Duration)), `penalty_max = "10m"`)
	}
	s.PenaltyMaxSources = t.integer("penalty_max_sources", 65536, 1, 1000000)
	s.PenaltyOverflow = PenaltyOverflow(t.enum("penalty_overflow", string(OverflowPermissive), "",
		string(OverflowPermissive), string(OverflowDenyAll)))
	s.PenaltyExempt = []netip.Prefix{}
	for _, e := range t.list("penalty_exempt", []string{}) {
		p, err := parseNetwork(e)
		if err != nil {
			t.report("penalty_exempt", err.Error(), `penalty_exempt = ["192.0.2.10", "198.51.100.0/24", "2001:db8:1::/48"]`)
			continue
		}
		s.PenaltyExempt = append(s.PenaltyExempt, p)
	}
}

// parseNetwork reads an address (one host) or a network in CIDR notation.
// A network with bits set past its mask is refused, as sshd refuses it:
// "192.0.2.7/24" is a typo for one host or for the /24, and guessing which
// would widen or narrow an exemption silently.
func parseNetwork(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%s is not an IP address or network", show(s))
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s is not an IP address or network (like 192.0.2.0/24)", show(s))
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%s: write IPv4 networks in IPv4 form", show(s))
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s has bits set past its /%d mask; did you mean %s?", show(s), p.Bits(), p.Masked())
	}
	return p, nil
}

// checkPattern validates the authorized_keys path pattern.
func (c *checker) checkPattern(t *table, p string) {
	const fix = `authorized_keys = "%h/.ssh/authorized_keys" (%h is the home directory, %u the user name, %% a literal %)`
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			continue
		}
		if i+1 >= len(p) || !strings.ContainsRune("hu%", rune(p[i+1])) {
			t.report("authorized_keys", fmt.Sprintf("%s has an unknown %%-token", show(p)), fix)
			return
		}
		i++
	}
	if !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "%h") {
		t.report("authorized_keys", fmt.Sprintf("%s must be an absolute path or start with %%h", show(p)), fix)
	}
}

// table reads one TOML table, remembering which keys it knows so that the
// rest can be reported as unknown.
type table struct {
	c     *checker
	path  []string
	m     map[string]any
	known []string
}

func (t *table) key(k string) []string { return append(slices.Clone(t.path), k) }

func (t *table) report(k, msg, fix string) { t.c.report(t.key(k), msg, fix) }

func (t *table) has(k string) bool {
	_, ok := t.m[k]
	return ok
}

func (t *table) get(k string) (any, bool) {
	t.known = append(t.known, k)
	if len(t.path) == 1 {
		t.c.homeOf[k] = t.path[0]
	}
	v, ok := t.m[k]
	return v, ok
}

// wrongType reports a value of the wrong TOML type.
func (t *table) wrongType(k string, v any, want, fix string) {
	t.report(k, fmt.Sprintf("must be %s, not %s", want, typeName(v)), fix)
}

// sub returns the sub-table k; an absent or mistyped one reads as empty.
func (t *table) sub(k string) *table {
	s := &table{c: t.c, path: t.key(k)}
	if v, ok := t.get(k); ok {
		if m, isMap := v.(map[string]any); isMap {
			s.m = m
		} else {
			t.wrongType(k, v, "a table", fmt.Sprintf("write it as a [%s] section", displayKey(s.path)))
		}
	}
	return s
}

// str returns the string at k, or def when absent; ok is false when the
// value has the wrong type (already reported).
func (t *table) str(k, def string) (string, bool) {
	v, present := t.get(k)
	if !present {
		return def, true
	}
	s, ok := v.(string)
	if !ok {
		t.wrongType(k, v, "a string", fmt.Sprintf("put the value in double quotes: %s = \"...\"", displayKey([]string{k})))
		return def, false
	}
	return s, true
}

func (t *table) boolean(k string, def bool) bool {
	v, present := t.get(k)
	if !present {
		return def
	}
	b, ok := v.(bool)
	if !ok {
		t.wrongType(k, v, "true or false", fmt.Sprintf("%s = %t (no quotes)", k, def))
		return def
	}
	return b
}

func (t *table) integer(k string, def, lo, hi int) int {
	v, present := t.get(k)
	if !present {
		return def
	}
	n, ok := v.(int64)
	switch {
	case !ok:
		t.wrongType(k, v, "a whole number", fmt.Sprintf("%s = %d (no quotes)", k, def))
	case n < int64(lo) || n > int64(hi):
		t.report(k, fmt.Sprintf("%d is out of range %d..%d", n, lo, hi), fmt.Sprintf("%s = %d", k, def))
	default:
		return int(n)
	}
	return def
}

// duration reads a duration between lo and hi, or "0" when zeroOK.
func (t *table) duration(k string, def, lo, hi time.Duration, zeroOK bool) Duration {
	fix := fmt.Sprintf("%s = %q (a number and a unit: ms, s, m or h)", k, shortDuration(def))
	v, present := t.get(k)
	if !present {
		return Duration{def}
	}
	s, ok := v.(string)
	if !ok {
		t.wrongType(k, v, `a duration in quotes, like "3s"`, fix)
		return Duration{def}
	}
	var d Duration
	if err := d.UnmarshalText([]byte(s)); err != nil {
		t.report(k, fmt.Sprintf("%s is not a duration", show(s)), fix)
		return Duration{def}
	}
	if zeroOK && d.Duration == 0 {
		return d
	}
	if d.Duration < lo || d.Duration > hi {
		msg := fmt.Sprintf("%s is out of range %s..%s", show(s), shortDuration(lo), shortDuration(hi))
		if zeroOK {
			msg += `, or "0" for off`
		}
		t.report(k, msg, fix)
		return Duration{def}
	}
	return d
}

// enum reads one of allowed; def "" means the key is required (the caller
// reports it missing).
func (t *table) enum(k, def, fix string, allowed ...string) string {
	choices := `"` + strings.Join(allowed, `" or "`) + `"`
	if fix == "" {
		fix = fmt.Sprintf("%s = %q", k, allowed[0])
	}
	s, ok := t.str(k, def)
	switch {
	case !ok || !t.has(k) || slices.Contains(allowed, s):
		return s
	case isPlaceholder(s):
		t.report(k, fmt.Sprintf("%s is still the placeholder: choose %s", k, choices), fix)
	default:
		t.report(k, fmt.Sprintf("must be %s, not %s", choices, show(s)), fix)
	}
	return def
}

// list reads an array of strings.
func (t *table) list(k string, def []string) []string {
	v, present := t.get(k)
	if !present {
		return def
	}
	fix := fmt.Sprintf(`write a list of quoted strings: %s = ["...", "..."]`, k)
	arr, ok := v.([]any)
	if !ok {
		t.wrongType(k, v, "a list of strings", fix)
		return def
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.report(k, fmt.Sprintf("must hold only strings, not %s", typeName(e)), fix)
			return def
		}
		out = append(out, s)
	}
	return out
}

// finish reports the keys of the table that nothing read.
func (t *table) finish() {
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if slices.Contains(t.known, k) {
			continue
		}
		path := t.key(k)
		_, isTable := t.m[k].(map[string]any)
		var msg, fix string
		switch {
		case t.path == nil && isTable:
			msg = fmt.Sprintf("unknown table [%s]", displayKey(path))
			if s := suggest(k, t.known); s != "" {
				msg += fmt.Sprintf("; did you mean [%s]?", s)
				fix = fmt.Sprintf("rename it to [%s]", s)
			}
		case t.path == nil && t.c.homeOf[k] != "":
			msg = fmt.Sprintf("%q belongs in [%s]", k, t.c.homeOf[k])
			fix = fmt.Sprintf("move it under the [%s] header", t.c.homeOf[k])
		case t.path == nil:
			msg = fmt.Sprintf("unknown key %q at the top level", k)
		default:
			msg = fmt.Sprintf("unknown key %q in [%s]", k, displayKey(t.path))
			if s := suggest(k, t.known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
				fix = "rename it to " + s
			}
		}
		if fix == "" {
			fix = "remove it; latch.toml.example lists every key"
		}
		t.c.report(path, msg, fix)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "a whole number"
	case float64:
		return "a fractional number"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "a list"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// shortDuration formats 2m as "2m", not "2m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
