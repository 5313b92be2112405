package users

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/edit")

// Distinctive values, so a leak is easy to spot.
const (
	testAppID  = "U8JZpDE0iGXlD6gNCFba"
	testSecret = "ZqXjLeakCanary0123456789abcdefghijKLMNOP"
	testOp     = "MXGjtEkDnNfribxUdl7d"
	acctAlice  = "XTPyLsxPFkThf4VucSmEHgaKwVJ7faC9qEwjky40UVsWmflzdE1F8ResqEDusTpk"
	acctBob    = "r0cStY4qWB8dWKnHfDNxSIvPZZ63fFKcZjR4I0b3jRtaWr4Y9OJFLJOqOAf1lLQS"
	acctDave   = "9WmXeHH2fdeeTFJGvVvQe1sKhBN88hXJsi6BwhTp3Fs2QhX6KWxOiixgVoOnzyw2"
	acctErin   = "MzP0ZvzOMhfWuBByReQMsm9Wcz7uW9XFOGOeMVNen5n1Ae6pWzpF1qH6YytwMe4L"
)

// Environment of the helper processes the tests start by re-running this
// test binary.
const (
	helperEnv      = "LATCH_USERS_TEST_HELPER" // "setusers" or "setuser-fsize"
	helperPathEnv  = "LATCH_USERS_TEST_PATH"
	helperUsersEnv = "LATCH_USERS_TEST_USERS" // comma-separated
	helperFsizeEnv = "LATCH_USERS_TEST_FSIZE"
	exitEditFailed = 3
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain runs SetUser for each user in helperUsersEnv. In
// "setuser-fsize" mode it first caps the size of files it may write, so
// writing the temporary file fails the way a full disk would, which root
// cannot be stopped from otherwise.
func helperMain(mode string) int {
	if mode == "setuser-fsize" {
		n, _ := strconv.ParseUint(os.Getenv(helperFsizeEnv), 10, 64)
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			return 1
		}
	}
	for _, u := range strings.Split(os.Getenv(helperUsersEnv), ",") {
		if err := SetUser(os.Getenv(helperPathEnv), u, acctDave); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return exitEditFailed
		}
	}
	return 0
}

// validConfig is a complete valid configuration; the line numbers matter to
// the problem tests.
const validConfig = `[latch]
app_id = "` + testAppID + `"
secret = "` + testSecret + `"

[policy]
fail_mode = "closed"

[operations]
sshd = "` + testOp + `"

[users]
alice = "` + acctAlice + `"
`

// writeFile writes a file with mode and returns its path.
func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// safeDir returns a new directory that passes CheckDirs.
func safeDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckDirs(dir); err != nil {
		t.Skipf("the temporary directory is not safe to test in: %v", err)
	}
	return dir
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (to chown to another uid); CI runs as root")
	}
}
