// Command pamhook is a pam_exec program for the systest self-tests: it writes
// its environment to the file named by its first argument, logs one
// LOG_AUTHPRIV|LOG_WARNING message tagged "latch-ssh" through log/syslog, and
// exits with the status given as its second argument.
package main

import (
	"log/syslog"
	"os"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 3 {
		os.Stderr.WriteString("usage: pamhook ENVFILE EXITCODE\n")
		os.Exit(2)
	}
	env := strings.Join(os.Environ(), "\n") + "\n"
	if err := os.WriteFile(os.Args[1], []byte(env), 0o600); err != nil {
		os.Exit(3)
	}
	if w, err := syslog.New(syslog.LOG_AUTHPRIV|syslog.LOG_WARNING, "latch-ssh"); err == nil {
		_ = w.Warning("pamhook user=" + os.Getenv("PAM_USER") + " type=" + os.Getenv("PAM_TYPE"))
		_ = w.Close()
	}
	code, _ := strconv.Atoi(os.Args[2])
	os.Exit(code)
}
