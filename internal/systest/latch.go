package systest

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/latch-ssh/latch-ssh/latch/latchtest"
)

// FakeLatch starts a strict fake Latch (latchtest) with the application
// appID/secret, and returns it with a SecureDir for configurations that pass
// latch-ssh's permission checks and the path of the fake's CA written in
// that directory. It needs root (SecureDir lives in /var/lib). New tests
// start from NewWorld, which builds on it and also writes the latch.toml.
func FakeLatch(t testing.TB, appID, secret string, opts ...latchtest.Option) (srv *latchtest.Server, dir, caFile string) {
	t.Helper()
	Require(t)
	srv = latchtest.New(t, opts...)
	srv.AddApp(appID, secret)
	dir = SecureDir(t)
	caFile = filepath.Join(dir, "latch-ca.pem")
	if err := srv.WriteCAFile(caFile); err != nil {
		t.Fatal(err)
	}
	return srv, dir, caFile
}

// LatchTable returns the [latch] table of a latch.toml that points at srv
// and trusts caFile, with the given timeout ("3s"), ending in a blank line.
func LatchTable(srv *latchtest.Server, appID, secret, caFile, timeout string) string {
	return fmt.Sprintf("[latch]\napp_id = %q\nsecret = %q\napi_url = %q\nca_file = %q\ntimeout = %q\n\n",
		appID, secret, srv.URL(), caFile, timeout)
}
