package checkconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latch-ssh/latch-ssh/internal/systest"
	"github.com/latch-ssh/latch-ssh/users"
)

// TestSecurityCheckConfigSharedUID (issue 12, item 5): check-config names
// the [users] entries whose uid other accounts share (useradd -o), and
// says whose latch decides; several [users] names of one uid with
// different accounts are an error, since every login of that uid is then
// denied. Each finding is located at the line of the first [users] name
// of that uid (issue 14: it used to name the file alone).
func TestSecurityCheckConfigSharedUID(t *testing.T) {
	systest.Require(t, "useradd")
	alice := systest.CreateUser(t, systest.UserOptions{})
	alias := systest.CreateUser(t, systest.UserOptions{UID: alice.UID})
	bob := systest.CreateUser(t, systest.UserOptions{})
	const acc1, acc2 = "ACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNT1", "ACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNTACCOUNT2"
	for _, tc := range []struct {
		name   string
		users  string
		errors int
		want   string
		// line is the line of latch.toml the finding must point at: the
		// [users] line of the first name mapped (alice's is 7, the next 8).
		line int
	}{
		{"alias not mapped", fmt.Sprintf("%s = %q\n%s = %q\n", alice.Name, acc1, bob.Name, acc2), 0,
			fmt.Sprintf("uid %d has several names (%s): the latch follows the uid, so a login under any of them is decided by %s's latch",
				alice.UID, strings.Join(sortedNames(alice.Name, alias.Name), ", "), alice.Name), 7},
		{"both mapped, one account", fmt.Sprintf("%s = %q\n%s = %q\n", alice.Name, acc1, alias.Name, acc1), 0, "has several names",
			firstLine(alice.Name, alias.Name)},
		{"both mapped, two accounts", fmt.Sprintf("%s = %q\n%s = %q\n", alice.Name, acc1, alias.Name, acc2), 1, "with different Latch accounts",
			firstLine(alice.Name, alias.Name)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := systest.OfflineLatch +
				"[policy]\nfail_mode = \"closed\"\n[users]\n" + tc.users
			path := filepath.Join(t.TempDir(), "latch.toml")
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			in := users.Inspect(path)
			if in.Config == nil || len(in.Problems) > 0 || in.Err != nil {
				t.Fatalf("the test's latch.toml does not load: %v %v", in.Problems, in.Err)
			}
			rep := &Report{Findings: sharedUIDs(&run{in: in, cfg: in.Config}, passwdNames("/etc/passwd"))}
			out := render(rep)
			if errors, _ := rep.Count(); errors != tc.errors || !strings.Contains(out, tc.want) {
				t.Fatalf("%d errors (want %d), output lacks %q:\n%s", errors, tc.errors, tc.want, out)
			}
			if at := fmt.Sprintf("%s:%d: [users]: uid %d", path, tc.line, alice.UID); !strings.Contains(out, at) {
				t.Fatalf("output lacks %q (file:line of the first [users] name of the uid):\n%s", at, out)
			}
			if strings.Contains(out, bob.Name) {
				t.Fatalf("bob shares no uid, but is named:\n%s", out)
			}
		})
	}
}

func sortedNames(a, b string) []string {
	if a < b {
		return []string{a, b}
	}
	return []string{b, a}
}

// firstLine is the line of the name that sorts first, when a is on line 7
// of latch.toml and b on line 8.
func firstLine(a, b string) int {
	if a < b {
		return 7
	}
	return 8
}
