package gatesocket

import (
	"encoding/json"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/pairing"
)

// TestWireBytes pins the protocol byte for byte. During an upgrade the
// ForceCommand gate of the older install talks to the newer daemon (and
// root's pair of one version to the daemon of another), so a renamed JSON
// key, a lost omitempty or a reordered field would deny logins or lose an
// answer. The expected lines are what version 1 has always sent (they were
// produced by the code before the socket left package gate). It also pins
// the conversion of pairing's results into wire messages (response,
// WireStatus): a field of pairing.UserStatus left out of the conversion
// shows here.
func TestWireBytes(t *testing.T) {
	status := pairing.UserStatus{User: "alice", Paired: true, Account: "abcd…wxyz", Note: "n",
		Latches: []pairing.LatchState{
			{State: "open"},
			{Service: "sshd", Operation: "OPSSHD…", State: "error", Detail: "d"},
		}}
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"decide, all fields", SocketRequest{V: ProtocolVersion, Op: OpDecide, Service: "sshd", Interactive: true, Command: "ls -l", Remote: "192.0.2.1"},
			`{"v":1,"op":"decide","service":"sshd","interactive":true,"command":"ls -l","remote":"192.0.2.1"}`},
		{"decide, bare", SocketRequest{V: ProtocolVersion, Op: OpDecide, Service: ForceCommandService},
			`{"v":1,"op":"decide","service":"sshd"}`},
		{"otp", SocketRequest{V: ProtocolVersion, Op: OpOTP, Code: "g2sEXg"}, `{"v":1,"op":"otp","code":"g2sEXg"}`},
		{"otp, no code", SocketRequest{V: ProtocolVersion, Op: OpOTP}, `{"v":1,"op":"otp"}`},
		{"pair", SocketRequest{V: ProtocolVersion, Op: OpPair, Token: "AbC123"}, `{"v":1,"op":"pair","token":"AbC123"}`},
		{"unpair", SocketRequest{V: ProtocolVersion, Op: OpUnpair}, `{"v":1,"op":"unpair"}`},
		{"status", SocketRequest{V: ProtocolVersion, Op: OpStatus}, `{"v":1,"op":"status"}`},
		{"reload", SocketRequest{V: ProtocolVersion, Op: OpReload}, `{"v":1,"op":"reload"}`},
		{"ask-otp", SocketResponse{V: ProtocolVersion, Outcome: "ask-otp", Prompt: "Latch one-time code: "},
			`{"v":1,"outcome":"ask-otp","prompt":"Latch one-time code: "}`},
		{"allow", SocketResponse{V: ProtocolVersion, Outcome: "allow"}, `{"v":1,"outcome":"allow"}`},
		{"deny", SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied"},
			`{"v":1,"outcome":"deny","message":"latch-ssh: access denied"}`},
		{"self-service refused", response(pairing.Result{Message: "no\x1b[31m"}), `{"v":1,"message":"no\\x1b[31m"}`},
		{"self-service done", response(pairing.Result{OK: true, Message: "paired alice"}), `{"v":1,"message":"paired alice","ok":true}`},
		{"status answer", response(pairing.Result{OK: true, Status: &status}),
			`{"v":1,"ok":true,"status":{"user":"alice","paired":true,"account":"abcd…wxyz","latches":[{"state":"open"},{"service":"sshd","operation":"OPSSHD…","state":"error","detail":"d"}],"note":"n"}}`},
		{"status, unpaired", WireStatus(pairing.UserStatus{User: "bob", Note: "not paired"}), `{"user":"bob","paired":false,"note":"not paired"}`},
	} {
		b, err := json.Marshal(tc.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
	// The accept loop writes its refusal without encoding it: it must be
	// the same line the encoder would write.
	b, _ := json.Marshal(SocketResponse{V: ProtocolVersion, Outcome: "deny", Message: "latch-ssh: access denied: too many connections"})
	if string(busyAnswer) != string(b)+"\n" {
		t.Errorf("busyAnswer = %q, want %q", busyAnswer, string(b)+"\n")
	}
}
