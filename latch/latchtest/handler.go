package latchtest

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Latch error codes the fake produces by itself. (The latch package has
// them too; the fake keeps its own so that it shares no code with the
// client it checks.)
const (
	codeBadAuthHeader  = 101
	codeBadSignature   = 102
	codeNoAuthHeader   = 103
	codeNoDateHeader   = 104
	codeBadDateFormat  = 108
	codeExpired        = 109
	codeNotPaired      = 201
	codeAlreadyPaired  = 205
	codeTokenNotFound  = 206
	codeNotFound       = 301
	codeMissingParam   = 401
	codeBadParameter   = 402
	dateLayout         = "2006-01-02 15:04:05"
	maxRequestBodySize = 64 << 10
)

// route is a parsed request path under /api/<version>.
type route struct {
	kind                   string // status, pair, unpair, lock, unlock, history, operation, instance
	account, op, inst, tok string
	// names are the instances= form values of a PUT /instance.
	names         []string
	nootp, silent bool
	from, to      int64
	ranged        bool
}

// parseRoute maps a method and escaped path to a route, or returns the
// HTTP status (404, 405) and the allowed methods.
func parseRoute(method, path string) (route, int, string) {
	segs := strings.Split(path, "/")
	if len(segs) < 4 || segs[0] != "" || segs[1] != "api" || !slices.Contains([]string{"1.0", "1.3", "3.0"}, segs[2]) {
		return route{}, http.StatusNotFound, ""
	}
	rt, a := route{kind: segs[3]}, segs[4:]
	if slices.Contains(a, "") {
		return route{}, http.StatusNotFound, ""
	}
	allow, ok := "GET", false
	switch rt.kind {
	case "status":
		ok = len(a) > 0
		if ok {
			rt.account, a = a[0], a[1:]
		}
		if len(a) >= 2 && a[0] == "op" {
			rt.op, a = a[1], a[2:]
		}
		if len(a) >= 2 && a[0] == "i" {
			rt.inst, a = a[1], a[2:]
		}
		if len(a) >= 1 && a[0] == "nootp" {
			rt.nootp, a = true, a[1:]
		}
		if len(a) >= 1 && a[0] == "silent" {
			rt.silent, a = true, a[1:]
		}
		ok = ok && len(a) == 0
	case "pair":
		allow, ok = "GET, POST", len(a) == 1
		if ok {
			rt.tok = a[0]
		}
	case "unpair":
		ok = len(a) == 1
		if ok {
			rt.account = a[0]
		}
	case "lock", "unlock", "instance":
		// {account}[/op/{op}][/i/{instance}], as the Java SDK's lock,
		// unlock, addInstance and removeInstance build them.
		ok = len(a) > 0
		if ok {
			rt.account, a = a[0], a[1:]
		}
		if len(a) >= 2 && a[0] == "op" {
			rt.op, a = a[1], a[2:]
		}
		if len(a) >= 2 && a[0] == "i" {
			rt.inst, a = a[1], a[2:]
		}
		ok = ok && len(a) == 0
		switch {
		case rt.kind != "instance":
			allow = "POST"
		case rt.inst != "":
			allow = "DELETE"
		default:
			allow = "GET, PUT"
		}
	case "history":
		ok = len(a) == 1 || len(a) == 3
		if ok {
			rt.account = a[0]
		}
		if len(a) == 3 {
			var e1, e2 error
			rt.from, e1 = strconv.ParseInt(a[1], 10, 64)
			rt.to, e2 = strconv.ParseInt(a[2], 10, 64)
			rt.ranged, ok = true, e1 == nil && e2 == nil
		}
	case "operation":
		ok = len(a) <= 1
		if len(a) == 1 {
			rt.op = a[0]
		}
	}
	switch {
	case !ok:
		return route{}, http.StatusNotFound, ""
	case !slices.Contains(strings.Split(allow, ", "), method):
		return route{}, http.StatusMethodNotAllowed, allow
	}
	return rt, 0, ""
}

// authenticate checks the Authorization and X-11Paths-Date headers the way
// Latch does, from the request as received. It returns the application id
// named by the header (if readable) and 0, or a Latch error code.
func (s *Server) authenticate(r *http.Request, body []byte, now time.Time) (string, int) {
	auths, dates := r.Header.Values("Authorization"), r.Header.Values("X-11Paths-Date")
	if len(auths) == 0 {
		return "", codeNoAuthHeader
	}
	if len(dates) == 0 {
		return "", codeNoDateHeader
	}
	f := strings.Split(auths[0], " ")
	if len(auths) != 1 || len(f) != 3 || f[0] != "11PATHS" || f[1] == "" || f[2] == "" {
		return "", codeBadAuthHeader
	}
	appID := f[1]
	date, err := time.Parse(dateLayout, dates[0])
	if err != nil || len(dates) != 1 {
		return appID, codeBadDateFormat
	}
	s.mu.Lock()
	a := s.apps[appID]
	var secret string
	if a != nil {
		secret = a.secret
	}
	s.mu.Unlock()
	if a == nil {
		return appID, codeBadSignature
	}
	mac := hmac.New(sha1.New, []byte(secret))
	io.WriteString(mac, stringToSign(r, dates[0], body))
	if !hmac.Equal([]byte(f[2]), []byte(base64.StdEncoding.EncodeToString(mac.Sum(nil)))) {
		return appID, codeBadSignature
	}
	if d := now.Sub(date); d > s.window || d < -s.window {
		return appID, codeExpired
	}
	return appID, 0
}

// stringToSign is Latch's string to sign, computed from what was received:
// the method, the raw date header, the X-11Paths-* headers present, the
// request target as sent and, for a POST or PUT, the form body as sent.
func stringToSign(r *http.Request, date string, body []byte) string {
	var hs [][2]string
	for name, vals := range r.Header {
		n := strings.ToLower(name)
		if strings.HasPrefix(n, "x-11paths-") && n != "x-11paths-date" {
			hs = append(hs, [2]string{n, strings.NewReplacer("\r", " ", "\n", " ").Replace(strings.Join(vals, ","))})
		}
	}
	slices.SortFunc(hs, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	var h []string
	for _, kv := range hs {
		h = append(h, kv[0]+":"+kv[1])
	}
	sts := strings.ToUpper(r.Method) + "\n" + date + "\n" + strings.Join(h, " ") + "\n" + r.RequestURI
	if params := formOf(r, body); len(params) > 0 && (r.Method == "POST" || r.Method == "PUT") {
		var p []string
		for _, k := range slices.Sorted(maps.Keys(params)) {
			for _, v := range slices.Sorted(slices.Values(params[k])) {
				p = append(p, javaFormEncode(k)+"="+javaFormEncode(v))
			}
		}
		sts += "\n" + strings.Join(p, "&")
	}
	return sts
}

// javaFormEncode is java.net.URLEncoder.encode(s, "UTF-8"), written here
// from Java's documented rules and not shared with the latch package, so a
// bug in the client's encoder cannot hide behind the same bug here: the
// alphanumerics "a"-"z", "A"-"Z", "0"-"9" and the four characters ".",
// "-", "*", "_" stay as they are; a space becomes "+"; every other byte of
// the UTF-8 encoding becomes "%XY" in upper-case hex. (Go's url.QueryEscape
// escapes "*" and keeps "~": it is not this.)
func javaFormEncode(s string) string {
	var out []byte
	for _, c := range []byte(s) {
		isAlnum := c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
		switch {
		case isAlnum || strings.IndexByte(".-*_", c) >= 0:
			out = append(out, c)
		case c == ' ':
			out = append(out, '+')
		default:
			out = fmt.Appendf(out, "%%%02X", c)
		}
	}
	return string(out)
}

// formProblem checks the body of a POST or PUT the way the official SDKs
// send it: Content-Type application/x-www-form-urlencoded on every POST and
// PUT, an empty body included, and every name and value encoded exactly as
// java.net.URLEncoder writes it. The real service's tolerance here is not
// known; the fake is strict so that a client differing from the SDKs is
// caught. It returns "" when the body is right.
func formProblem(r *http.Request, body []byte) string {
	if r.Method != "POST" && r.Method != "PUT" {
		return ""
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return "latchtest: a " + r.Method + " must be sent with Content-Type application/x-www-form-urlencoded, as the official SDKs send it, even without params"
	}
	if len(body) == 0 {
		return ""
	}
	for _, pair := range strings.Split(string(body), "&") {
		k, v, ok := strings.Cut(pair, "=")
		dk, e1 := url.QueryUnescape(k)
		dv, e2 := url.QueryUnescape(v)
		if !ok || e1 != nil || e2 != nil || javaFormEncode(dk) != k || javaFormEncode(dv) != v {
			return fmt.Sprintf("latchtest: form parameter %q is not encoded as java.net.URLEncoder encodes it", pair)
		}
	}
	return ""
}

// formOf parses body as a form only if it was sent as one.
func formOf(r *http.Request, body []byte) url.Values {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		return nil
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil
	}
	return v
}

// answer is what an endpoint answers: a Latch error code, or data (nil for
// "{}").
type answer struct {
	code int
	msg  string // the error message, if not the usual one
	data any
}

type obj = map[string]any

// serveHTTP answers one request: route, fault, signature, endpoint. It is
// not exported so that the fake is only reachable over its own TLS.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	q := Request{Time: now, Method: r.Method, ProtoMajor: r.ProtoMajor, Path: r.RequestURI, ContentType: r.Header.Get("Content-Type")}
	p, ok := s.enter(q)
	if !ok {
		http.Error(w, "closing", http.StatusServiceUnavailable)
		return
	}
	defer s.active.Done()
	// The log entry is final before any answer leaves (see answered), or
	// when the handler gives up.
	answered := func() { q.Finished = true; s.publish(p, q) }
	defer answered()
	w.Header().Set("Date", httpDate(now))

	// A wait ended by the client or by Close drops the connection without
	// an answer (returning normally would send an empty 200).
	ctxDone := r.Context().Done()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBodySize))
	if err != nil {
		q.HTTPStatus = http.StatusBadRequest
		http.Error(w, "bad request body", q.HTTPStatus)
		return
	}
	if !s.wait(time.Duration(s.rtt.Load()), ctxDone) {
		panic(http.ErrAbortHandler)
	}
	rt, status, allow := parseRoute(r.Method, r.URL.EscapedPath())
	q.Account, q.Operation, q.Instance, q.NoOTP, q.Silent = rt.account, rt.op, rt.inst, rt.nootp, rt.silent
	if status != 0 {
		if allow != "" {
			w.Header().Set("Allow", allow)
		}
		q.HTTPStatus = status
		http.Error(w, http.StatusText(status), status)
		return
	}
	if rt.kind == "pair" {
		q.Account = s.tokenAccount(rt.tok)
	}
	f := s.takeFault(q.Account, rt.kind)
	q.Fault = f.describe()
	if f == nil {
		f = &Fault{}
	}
	if !s.wait(f.Delay, ctxDone) {
		panic(http.ErrAbortHandler)
	}
	if f.Hang {
		s.publish(p, q)
		select {
		case <-ctxDone:
		case <-s.done:
		}
		panic(http.ErrAbortHandler)
	}
	if f.HTTPStatus != 0 || f.Body != nil {
		q.HTTPStatus = cmp.Or(f.HTTPStatus, http.StatusOK)
		answered()
		writeProxyFault(w, f, q.HTTPStatus)
		return
	}

	appID, code := s.authenticate(r, body, now)
	q.AppID = appID
	var a answer
	switch {
	case code != 0:
		a = answer{code: code}
	case f.ErrorCode != 0:
		a = answer{code: f.ErrorCode}
	case formProblem(r, body) != "":
		a = answer{code: codeBadParameter, msg: formProblem(r, body)}
	default:
		rt.names = formOf(r, body)["instances"]
		a = s.serve(appID, rt, formOf(r, body).Get("commonName"), f, r, now)
	}
	q.Code, q.HTTPStatus = a.code, http.StatusOK
	out := a.data
	if a.code != 0 {
		out = obj{"error": obj{"code": a.code, "message": cmp.Or(f.Message, a.msg, message(a.code))}}
	} else if out == nil {
		out = obj{}
	} else {
		out = obj{"data": out}
	}
	b, _ := json.Marshal(out)
	answered()
	if r.ProtoMajor == 2 && (f.Truncate || f.CloseMidAnswer) {
		writeBrokenStream(w, b, f.Truncate)
	}
	if f.Truncate || f.CloseMidAnswer {
		writeBroken(w, b, f.Truncate, now)
		return
	}
	if r.ProtoMajor == 2 && f.Drip > 0 {
		s.dripStream(w, b, f.Drip, ctxDone)
		return
	}
	if f.Drip > 0 {
		s.writeDrip(w, b, f.Drip, now)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// writeProxyFault answers an HTTP status and body the way a proxy or load
// balancer in front of Latch would.
func writeProxyFault(w http.ResponseWriter, f *Fault, status int) {
	b := f.Body
	if b == nil {
		b = fmt.Appendf(nil, "<html><body><h1>%d %s</h1></body></html>\n", status, http.StatusText(status))
		w.Header().Set("Content-Type", "text/html")
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	w.WriteHeader(status)
	w.Write(b)
}

// writeBroken takes over the connection and sends the answer b with a
// Content-Length larger than b (truncate), or the first half of the whole
// HTTP answer, then closes the connection.
func writeBroken(w http.ResponseWriter, b []byte, truncate bool, now time.Time) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	length := len(b)
	if truncate {
		length += 64
	}
	raw := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: %s\r\nContent-Length: %d\r\n\r\n%s", httpDate(now), length, b)
	if !truncate {
		raw = raw[:len(raw)/2]
	}
	io.WriteString(conn, raw)
}

// writeBrokenStream is writeBroken over HTTP/2, where a handler cannot take
// over the connection: it sends the answer b with a Content-Length larger
// than b (truncate), or the first half of b, then resets the stream.
func writeBrokenStream(w http.ResponseWriter, b []byte, truncate bool) {
	w.Header().Set("Content-Type", "application/json")
	if truncate {
		w.Header().Set("Content-Length", strconv.Itoa(len(b)+64))
	} else {
		b = b[:len(b)/2]
	}
	w.Write(b)
	http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// dripStream is writeDrip over HTTP/2: the answer b, one flushed byte
// every interval, until it is sent, the client goes away or the server
// closes.
func (s *Server) dripStream(w http.ResponseWriter, b []byte, interval time.Duration, cancel <-chan struct{}) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	rc := http.NewResponseController(w)
	for i := range b {
		if _, err := w.Write(b[i : i+1]); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
		if i < len(b)-1 && !s.wait(interval, cancel) {
			return
		}
	}
}

// writeDrip takes over the connection and sends the whole HTTP answer with
// body b one byte every interval, until it is sent, a write fails (the
// client went away) or the server closes.
func (s *Server) writeDrip(w http.ResponseWriter, b []byte, interval time.Duration, now time.Time) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	raw := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", httpDate(now), len(b), b)
	for i := range len(raw) {
		if _, err := io.WriteString(conn, raw[i:i+1]); err != nil {
			return
		}
		if i < len(raw)-1 && !s.wait(interval, nil) {
			return
		}
	}
}

// tokenAccount returns the Latch user a pairing token belongs to.
func (s *Server) tokenAccount(tok string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tokens[tok]; t != nil {
		return t.account
	}
	return ""
}

// serve runs the endpoint of an authenticated request.
func (s *Server) serve(appID string, rt route, commonName string, f *Fault, r *http.Request, now time.Time) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[appID]
	if rt.kind == "pair" {
		return s.pair(appID, rt.tok, commonName, now)
	}
	if rt.kind == "operation" {
		if rt.op == "" {
			return answer{data: obj{"operations": s.opTree(appID, "", nil)}}
		}
		if o := s.ops[rt.op]; o == nil || o.app != appID {
			return answer{code: codeNotFound}
		}
		// The official Java and Python tests read the operation's
		// children at the top level of data.operations.
		return answer{data: obj{"operations": s.opTree(appID, rt.op, nil)}}
	}
	paired := a.paired[rt.account]
	if paired == nil {
		return answer{code: codeNotPaired}
	}
	if o := s.ops[rt.op]; rt.op != "" && (o == nil || o.app != appID) {
		return answer{code: codeNotFound}
	}
	if in := s.instances[rt.inst]; rt.inst != "" && (in == nil || in.app != appID || in.account != rt.account || in.parent != rt.op) {
		// An instance this account does not have under this latch. The
		// code the real service answers is not documented (no SDK test
		// asks for a missing instance); the fake answers 301, the
		// documented "application or operation not found", the nearest
		// documented meaning, with its documented message.
		return answer{code: codeNotFound}
	}
	switch rt.kind {
	case "status":
		return s.status(appID, rt, f, r, now)
	case "unpair":
		s.unpair(appID, rt.account)
		return answer{}
	case "lock", "unlock":
		s.setLatch(rt.account, cmp.Or(rt.inst, rt.op, appID), rt.kind == "unlock", "DEVELOPER_UPDATE", now)
		return answer{}
	case "instance":
		return s.instance(appID, rt, r.Method)
	default: // history
		if rt.ranged && (rt.from < 0 || rt.to < 0) {
			// The SDKs send a missing bound as 0 (from) or now (to),
			// never a negative epoch.
			return answer{code: codeBadParameter, msg: "latchtest: history bounds must be epoch milliseconds, not negative"}
		}
		evs := []event{}
		for _, e := range s.history[pair{rt.account, appID}] {
			if !rt.ranged || e.T >= rt.from && e.T <= rt.to {
				evs = append(evs, e)
			}
		}
		return answer{data: obj{
			appID: obj{
				"name": appID, "status": onOff(s.open(rt.account, appID)),
				"pairedOn": paired.since.UnixMilli(), "operations": s.opStatuses(rt.account, appID, ""),
			},
			"count":   len(evs),
			"history": evs,
		}}
	}
}

// status answers /status: the latch of the instance, else the operation,
// else the application, closed if any latch above it is closed.
func (s *Server) status(appID string, rt route, f *Fault, r *http.Request, now time.Time) answer {
	id, open, twoFactor := appID, s.open(rt.account, appID), s.apps[appID].twoFactor
	if rt.op != "" {
		id, twoFactor = rt.op, s.ops[rt.op].twoFactor
		for o := s.ops[rt.op]; o != nil; o = s.ops[o.parent] {
			open = open && s.open(rt.account, o.id)
		}
	}
	owner := id
	if rt.inst != "" {
		id = rt.inst
		open = open && s.open(rt.account, rt.inst)
	}
	entry := obj{"status": onOff(open), "operations": s.childStatuses(rt.account, appID, id, rt.inst != "")}
	if open && twoFactor && !rt.nootp {
		tok := randomID(6)
		s.otp[pair{rt.account, owner}] = tok
		entry["two_factor"] = obj{"token": tok, "generated": now.UnixMilli()}
	}
	s.addEvent(rt.account, appID, event{Action: "get", What: "status", Value: onOff(open), Name: id,
		UserAgent: r.UserAgent(), IP: r.RemoteAddr}, now)
	if f.Status != "" {
		entry["status"] = f.Status
	}
	if f.WrongID {
		last := strings.IndexByte(alnum, id[len(id)-1])
		id = id[:len(id)-1] + string(alnum[(last+1)%len(alnum)])
	}
	return answer{data: obj{"operations": obj{id: entry}}}
}

// instance answers /instance/{account}[/op/{op}]: PUT creates one
// instance named by the form's instances= value and answers
// {"instances":{"<id>":"<name>"}} (the shape the official Java, Python and
// Node.js tests read), GET lists the latch's instances as
// {"<id>":{"name":...,"two_factor":...,"lock_on_request":...}} (the
// Python and Node.js tests), and DELETE .../i/{id} removes one and answers
// {}. The instance of a DELETE was checked to exist by serve.
func (s *Server) instance(appID string, rt route, method string) answer {
	switch method {
	case "DELETE":
		delete(s.instances, rt.inst)
		delete(s.latches, pair{rt.account, rt.inst})
		return answer{}
	case "GET":
		out := obj{}
		for _, in := range s.instances {
			if in.app == appID && in.account == rt.account && in.parent == rt.op {
				out[in.id] = obj{"name": in.name, "two_factor": "DISABLED", "lock_on_request": "DISABLED"}
			}
		}
		return answer{data: out}
	}
	// The Python SDK says "only one at a time"; a missing or empty name
	// is a missing parameter.
	switch {
	case len(rt.names) == 0 || rt.names[0] == "":
		return answer{code: codeMissingParam, msg: "Missing parameter: instances"}
	case len(rt.names) > 1:
		return answer{code: codeBadParameter, msg: "latchtest: one instance at a time, as the official SDKs create them"}
	}
	id := s.addInstance(appID, rt.account, rt.op, "", rt.names[0])
	return answer{data: obj{"instances": obj{id: rt.names[0]}}}
}

// pair answers /pair/{token}: single-use tokens of this application.
func (s *Server) pair(appID, tok, commonName string, now time.Time) answer {
	t := s.tokens[tok]
	if t == nil || t.app != appID || !now.Before(t.expires) {
		return answer{code: codeTokenNotFound}
	}
	delete(s.tokens, tok)
	a := s.apps[appID]
	if a.paired[t.account] != nil {
		return answer{code: codeAlreadyPaired}
	}
	a.paired[t.account] = &pairing{commonName: commonName, since: now}
	return answer{data: obj{"accountId": t.account}}
}

// opTree describes the operations of appID under parent (only one if not
// nil), with their children.
func (s *Server) opTree(appID, parent string, only *operation) obj {
	out := obj{}
	for _, o := range s.ops {
		if o.app == appID && o.parent == parent && (only == nil || only == o) {
			out[o.id] = obj{"name": o.id, "two_factor": mandatory(o.twoFactor), "lock_on_request": "DISABLED",
				"operations": s.opTree(appID, o.id, nil)}
		}
	}
	return out
}

// opStatuses gives the latches of an account's operations under parent.
func (s *Server) opStatuses(account, appID, parent string) obj {
	out := obj{}
	for _, o := range s.ops {
		if o.app == appID && o.parent == parent {
			out[o.id] = obj{"name": o.id, "status": onOff(s.open(account, o.id)),
				"operations": s.opStatuses(account, appID, o.id)}
		}
	}
	return out
}

// childStatuses is what the entry asked for carries as its nested
// "operations": its real child operations with their latches and, always,
// children in shapes a login gate must not choke on (no status, a status
// other than on/off, not an object at all). Only the entry asked for
// decides; a client that rejects the whole answer for an odd child sends
// every login of the application to fail mode (issue 13, point 1), and
// sending them in every answer makes every test that logs in check it.
func (s *Server) childStatuses(account, appID, id string, instance bool) obj {
	out := obj{}
	if !instance {
		parent := id
		if id == appID {
			parent = ""
		}
		out = s.opStatuses(account, appID, parent)
	}
	out["latchtestChildWithoutStatus"] = obj{"name": "a child without a status"}
	out["latchtestChildOddStatus"] = obj{"name": "a child in an unknown state", "status": "interactive", "two_factor": "DISABLED"}
	out["latchtestChildNotAnObject"] = "on"
	out["latchtestChildOddShape"] = obj{"status": obj{"value": "on"}, "operations": []any{"x", 1}}
	return out
}

func mandatory(on bool) string {
	if on {
		return "MANDATORY"
	}
	return "DISABLED"
}

func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }
