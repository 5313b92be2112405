// Command askgate is a client of the gate socket for the tests of
// internal/daemon. The tests run it as a test user, so that the daemon sees
// that user's uid through SO_PEERCRED.
//
//	askgate decide [-interactive] [-n N] [-timeout D] [-service S] [-command C] [-remote R] SOCKET
//	    asks gatesocket.AskDecision N times, each within D (default 2m), and
//	    prints one line per answer:
//	    "allow", "deny MESSAGE", or "error daemon ..." / "error other ...".
//	    When asked for a one-time code it prints "PROMPT <prompt>" and reads
//	    the code from one line of stdin.
//	askgate raw SOCKET LINE...
//	    sends each LINE as it is (one protocol message) and prints each
//	    answer line as "ANSWER <line>", or "EOF" when the daemon hangs up.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: askgate decide|raw ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "decide":
		decide(os.Args[2:])
	case "raw":
		raw(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "usage: askgate decide|raw ...")
		os.Exit(2)
	}
}

func decide(args []string) {
	fs := flag.NewFlagSet("decide", flag.ExitOnError)
	interactive := fs.Bool("interactive", false, "a person can be asked for a one-time code")
	n := fs.Int("n", 1, "number of decisions to ask for")
	service := fs.String("service", "", "service")
	command := fs.String("command", "", "command")
	remote := fs.String("remote", "", "client address")
	timeout := fs.Duration("timeout", 2*time.Minute, "deadline of each decision")
	fs.Parse(args)
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: askgate decide [flags] SOCKET")
		os.Exit(2)
	}
	stdin := bufio.NewReader(os.Stdin)
	otp := func(prompt string) (string, error) {
		fmt.Printf("PROMPT %s\n", prompt)
		line, err := stdin.ReadString('\n')
		return strings.TrimSuffix(line, "\n"), err
	}
	for range *n {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		resp, err := gatesocket.AskDecision(ctx, fs.Arg(0), gatesocket.SocketRequest{
			Service: *service, Interactive: *interactive, Command: *command, Remote: *remote,
		}, otp)
		cancel()
		switch {
		case errors.Is(err, gatesocket.ErrDaemon):
			fmt.Printf("error daemon %v\n", err)
		case err != nil:
			fmt.Printf("error other %v\n", err)
		case resp.Outcome == "allow":
			fmt.Println("allow")
		default:
			fmt.Printf("deny %s\n", resp.Message)
		}
	}
}

func raw(args []string) {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: askgate raw SOCKET LINE...")
		os.Exit(2)
	}
	conn, err := net.Dial("unix", args[0])
	if err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	r := bufio.NewReader(conn)
	for _, line := range args[1:] {
		if _, err := conn.Write([]byte(line + "\n")); err != nil {
			fmt.Printf("error %v\n", err)
			return
		}
		answer, err := r.ReadString('\n')
		if err != nil {
			fmt.Println("EOF")
			return
		}
		fmt.Printf("ANSWER %s", answer)
	}
}
