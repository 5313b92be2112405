package latchtest

import (
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"time"
)

// state is what the fake Latch knows. Every field is guarded by Server.mu.
type state struct {
	apps    map[string]*app
	ops     map[string]*operation // every operation, by id (ids are unique)
	users   map[string]bool       // every Latch account id ever created
	tokens  map[string]*pairingToken
	latches map[pair]bool   // {account, app/op/instance id} -> open; missing means open
	otp     map[pair]string // {account, app/op id} -> last two-factor token
	// instances are the instances created for an account, by id (ids are
	// unique across the fake).
	instances map[string]*instance
	history   map[pair][]event // {account, app id} -> events
}

type pair struct{ account, id string }

type app struct {
	secret    string
	twoFactor bool
	paired    map[string]*pairing // account id -> pairing
}

type pairing struct {
	commonName string
	since      time.Time
}

type operation struct {
	id, app, parent string // parent "" is the application
	twoFactor       bool
}

// instance is one instance of an account's latch: a child of the
// application's latch (parent "") or of an operation's, as the official
// SDKs create them (PUT /instance/{account}[/op/{op}]). Its own latch is in
// latches under its id.
type instance struct {
	id, app, account, parent, name string
}

type pairingToken struct {
	app, account string
	expires      time.Time
}

// event is one entry of an account's history, in the shape of the real one.
type event struct {
	T         int64  `json:"t"`
	Action    string `json:"action"`
	What      string `json:"what"`
	Value     string `json:"value"`
	Name      string `json:"name"`
	UserAgent string `json:"userAgent"`
	IP        string `json:"ip"`
}

func newState() state {
	return state{
		apps:      map[string]*app{},
		ops:       map[string]*operation{},
		users:     map[string]bool{},
		tokens:    map[string]*pairingToken{},
		latches:   map[pair]bool{},
		otp:       map[pair]string{},
		instances: map[string]*instance{},
		history:   map[pair][]event{},
	}
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomID returns n random letters and digits.
func randomID(n int) string {
	b := make([]byte, 0, n)
	var c [1]byte
	for len(b) < n {
		_, _ = rand.Read(c[:])
		if c[0] < 248 { // 248 = 4*62: no modulo bias
			b = append(b, alnum[c[0]%62])
		}
	}
	return string(b)
}

// AddApp registers an application and its secret (used as the bytes
// written, like the real service). Adding it again changes the secret.
func (s *Server) AddApp(appID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appID]; a != nil {
		a.secret = secret
		return
	}
	s.apps[appID] = &app{secret: secret, paired: map[string]*pairing{}}
}

// AddOperation registers operation opID of appID, child of parentOpID (""
// for a direct child of the application). It panics if appID or the parent
// is unknown, or if opID is taken.
func (s *Server) AddOperation(appID, opID, parentOpID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID)
	if p := s.ops[parentOpID]; parentOpID != "" && (p == nil || p.app != appID) {
		panic(fmt.Sprintf("latchtest: AddOperation: unknown parent operation %q of %q", parentOpID, appID))
	}
	if opID == "" || s.ops[opID] != nil || s.apps[opID] != nil {
		panic(fmt.Sprintf("latchtest: AddOperation: operation id %q empty or taken", opID))
	}
	s.ops[opID] = &operation{id: opID, app: appID, parent: parentOpID}
}

// SetTwoFactor turns two-factor ("MANDATORY") on or off for an application
// or operation id. It panics if the id is unknown.
func (s *Server) SetTwoFactor(id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.apps[id] != nil:
		s.apps[id].twoFactor = on
	case s.ops[id] != nil:
		s.ops[id].twoFactor = on
	default:
		panic(fmt.Sprintf("latchtest: SetTwoFactor: unknown id %q", id))
	}
}

// IssuePairingToken creates a new Latch user (a random 64-character account
// id) and returns a pairing token for appID, as the person's phone app
// would. The token works once, until the pairing TTL passes.
func (s *Server) IssuePairingToken(appID string) string {
	return s.IssuePairingTokenFor(appID, randomID(64))
}

// IssuePairingTokenFor returns a pairing token for appID and the Latch user
// accountID, created if new: pairing it with an application it is already
// paired with gives 205.
func (s *Server) IssuePairingTokenFor(appID, accountID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID)
	now := s.now()
	for tok, p := range s.tokens { // forget expired tokens
		if !now.Before(p.expires) {
			delete(s.tokens, tok)
		}
	}
	s.users[accountID] = true
	tok := randomID(6)
	for s.tokens[tok] != nil {
		tok = randomID(6)
	}
	s.tokens[tok] = &pairingToken{app: appID, account: accountID, expires: now.Add(s.pairingTTL)}
	return tok
}

// PairedAccount creates a Latch user already paired with appID, as if the
// person had paired some time ago, and returns its account id. It is for
// tests whose subject is not pairing itself; no request is logged.
func (s *Server) PairedAccount(appID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustApp(appID)
	acc := randomID(64)
	s.users[acc] = true
	s.apps[appID].paired[acc] = &pairing{since: s.now()}
	return acc
}

// SetLatch opens (on) or closes a latch of accountID, as the person does
// from the phone: id is the application, an operation or an instance id.
func (s *Server) SetLatch(accountID, id string, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLatch(accountID, id, on, "USER_UPDATE", s.now())
}

func (s *Server) setLatch(accountID, id string, on bool, action string, now time.Time) {
	s.latches[pair{accountID, id}] = on
	if appID := s.appOf(id); appID != "" {
		s.addEvent(accountID, appID, event{Action: action, What: "status", Value: onOff(on), Name: id}, now)
	}
}

// UnpairFromPhone unpairs accountID from appID as the person does from the
// phone; the application's next status call gets 201.
func (s *Server) UnpairFromPhone(appID, accountID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpair(appID, accountID)
}

// unpair removes a pairing and the latches that went with it.
func (s *Server) unpair(appID, accountID string) {
	if a := s.apps[appID]; a != nil {
		delete(a.paired, accountID)
	}
	for k := range s.latches {
		if k.account == accountID && s.appOf(k.id) == appID {
			delete(s.latches, k)
		}
	}
	for id, in := range s.instances {
		if in.account == accountID && in.app == appID {
			delete(s.instances, id)
			delete(s.latches, pair{accountID, id})
		}
	}
}

// AddInstance creates an instance named name of accountID's latch in
// appID, under operation parentOpID ("" for the application's latch), as
// PUT /instance does, and returns its id: instanceID if not "", else a new
// random one of 20 letters and digits (the real ids' shape is not
// documented; this is the shape of the other Latch ids). It is for tests
// whose subject is not creating instances; no request is logged. It panics
// if appID, the pairing or the operation is unknown, or instanceID is
// taken.
func (s *Server) AddInstance(appID, accountID, parentOpID, instanceID, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mustApp(appID).paired[accountID] == nil {
		panic(fmt.Sprintf("latchtest: AddInstance: %q is not paired with %q", accountID, appID))
	}
	if o := s.ops[parentOpID]; parentOpID != "" && (o == nil || o.app != appID) {
		panic(fmt.Sprintf("latchtest: AddInstance: unknown operation %q of %q", parentOpID, appID))
	}
	if instanceID != "" && (s.instances[instanceID] != nil || s.apps[instanceID] != nil || s.ops[instanceID] != nil) {
		panic(fmt.Sprintf("latchtest: AddInstance: instance id %q taken", instanceID))
	}
	return s.addInstance(appID, accountID, parentOpID, instanceID, name)
}

func (s *state) addInstance(appID, accountID, parentOpID, instanceID, name string) string {
	for instanceID == "" || s.instances[instanceID] != nil {
		instanceID = randomID(20)
	}
	s.instances[instanceID] = &instance{id: instanceID, app: appID, account: accountID, parent: parentOpID, name: name}
	return instanceID
}

// RemoveInstance deletes an instance as if someone had removed it (from
// another server, or the Latch developer area): its status calls get the
// unknown-instance error afterwards. It reports whether it existed.
func (s *Server) RemoveInstance(instanceID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := s.instances[instanceID]
	if in != nil {
		delete(s.instances, instanceID)
		delete(s.latches, pair{in.account, instanceID})
	}
	return in != nil
}

// InstanceInfo describes one instance the fake knows.
type InstanceInfo struct {
	ID, Name string
	// Operation is the operation the instance belongs to, "" for the
	// application's latch.
	Operation string
}

// Instances returns the instances of accountID in appID, sorted by id.
func (s *Server) Instances(appID, accountID string) []InstanceInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []InstanceInfo
	for _, in := range s.instances {
		if in.app == appID && in.account == accountID {
			out = append(out, InstanceInfo{ID: in.id, Name: in.name, Operation: in.parent})
		}
	}
	slices.SortFunc(out, func(a, b InstanceInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// LastTwoFactorToken returns the last two-factor token generated for
// accountID on the application or operation id: the code the person sees
// on the phone.
func (s *Server) LastTwoFactorToken(accountID, id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok, ok := s.otp[pair{accountID, id}]
	return tok, ok
}

// Accounts returns the account ids paired with appID, sorted.
func (s *Server) Accounts(appID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if a := s.apps[appID]; a != nil {
		for acc := range a.paired {
			out = append(out, acc)
		}
	}
	slices.Sort(out)
	return out
}

// CommonName returns the commonName sent when accountID was paired with
// appID ("" if none was sent or they are not paired).
func (s *Server) CommonName(appID, accountID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[appID]; a != nil && a.paired[accountID] != nil {
		return a.paired[accountID].commonName
	}
	return ""
}

func (s *Server) mustApp(appID string) *app {
	a := s.apps[appID]
	if a == nil {
		panic(fmt.Sprintf("latchtest: unknown application %q (call AddApp first)", appID))
	}
	return a
}

// appOf returns the application of an application, operation or instance
// id, "" for anything else.
func (s *state) appOf(id string) string {
	if s.apps[id] != nil {
		return id
	}
	if o := s.ops[id]; o != nil {
		return o.app
	}
	if in := s.instances[id]; in != nil {
		return in.app
	}
	return ""
}

func (s *state) open(account, id string) bool {
	on, set := s.latches[pair{account, id}]
	return on || !set
}

func (s *state) addEvent(account, appID string, e event, now time.Time) {
	e.T = now.UnixMilli()
	k := pair{account, appID}
	s.history[k] = append(s.history[k], e)
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}
