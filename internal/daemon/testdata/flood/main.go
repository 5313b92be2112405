// Command flood is a local user attacking the gate socket, for
// TestSecurityConnectFlood in internal/daemon: it opens connections to
// SOCKET as fast as it can from several goroutines and holds them (up to a
// few hundred each, then the oldest are closed to stay under the file
// descriptor limit), for DURATION or until killed. It prints one line of
// counts when it ends:
//
//	flood SOCKET DURATION
//	connected N refused M other K
//
// It uses raw non-blocking connect(2) calls, the cheapest way to fill a
// listen backlog: a full backlog answers EAGAIN at once.
package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

const (
	workers = 6
	hold    = 150 // connections each worker keeps open
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: flood SOCKET DURATION")
		os.Exit(2)
	}
	d, err := time.ParseDuration(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	addr := &unix.SockaddrUnix{Name: os.Args[1]}
	end := time.Now().Add(d)
	var connected, refused, other atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			held := make([]int, 0, hold)
			defer func() {
				for _, fd := range held {
					unix.Close(fd)
				}
			}()
			for i := 0; ; i++ {
				if i%64 == 0 && time.Now().After(end) {
					return
				}
				fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
				if err != nil {
					other.Add(1)
					continue
				}
				switch err := unix.Connect(fd, addr); {
				case err == nil:
					connected.Add(1)
				case errors.Is(err, unix.EAGAIN):
					refused.Add(1)
					unix.Close(fd)
					continue
				default:
					other.Add(1)
					unix.Close(fd)
					continue
				}
				if len(held) == hold {
					unix.Close(held[0])
					held = append(held[:0], held[1:]...)
				}
				held = append(held, fd)
			}
		})
	}
	wg.Wait()
	fmt.Printf("connected %d refused %d other %d\n", connected.Load(), refused.Load(), other.Load())
}
