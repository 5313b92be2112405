package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/latch-ssh/latch-ssh/internal/checkconfig"
	"github.com/latch-ssh/latch-ssh/internal/wiring"
)

// runCheckConfig implements `latch-ssh check-config`: every problem of the
// configuration with file:line and the fix, the file permissions, and (as
// root, where sshd is installed) the sshd and PAM wiring. Exit 0 when there
// is no error, 1 otherwise. It never prints the secret. The checks are
// internal/checkconfig's; this parses the flags and prints.
func runCheckConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	euid := os.Geteuid()
	o := checkconfig.Options{Root: euid == 0, ExampleConfig: exampleConfig()}
	configPath := configFlag(fs)
	fs.BoolVar(&o.SkipWiring, "no-wiring", false, "do not inspect sshd and PAM")
	fs.BoolVar(&o.Online, "online", false, "also ask Latch to check app_id and secret (one API call)")
	fs.BoolVar(&o.ListUsers, "users", false, "list each [users] name with the file:line that maps it")
	fs.StringVar(&o.Wiring.PAMDir, "pam-dir", wiring.DefaultPAMDir, "PAM configuration directory `DIR`")
	fs.StringVar(&o.Wiring.SSHDConfigFile, "sshd-config", "", "sshd configuration file `FILE` (default: sshd's own)")
	const help = `Checks the configuration (latch.toml and its latch.d/*.toml drop-ins), its permissions
and, as root, the sshd and PAM wiring, and reports every problem it finds at once, each
with file:line and the fix.
Exit 0: no errors (warnings allowed); 1: errors; 2: bad usage.`
	if code, done := parseNoArgs(fs, "check-config [-c FILE] [--online] [--users] [--no-wiring] [--pam-dir DIR] [--sshd-config FILE]", help, args, stdout, stderr); done {
		return code
	}
	o.ConfigPath = *configPath
	if !configAllowed("check-config", o.ConfigPath, euid, stderr) {
		return 2
	}
	rep := checkconfig.Run(context.Background(), o)
	for _, f := range rep.Findings {
		fmt.Fprintln(stdout, f)
	}
	fmt.Fprintln(stdout, rep.Summary())
	return rep.ExitCode()
}
