// Package bench measures what a latch costs a login (issue 7): each front
// end of latch-ssh side by side with plain OpenSSH, against the fake Latch
// (latch/latchtest) with an injected network round-trip time, on the
// machine it runs on.
//
// The benchmark itself is TestBench in the files tagged "bench", so that
// neither `go test ./...` nor `make test` compile or run it. It needs root
// and the real OpenSSH server and client (it creates users and starts
// private sshd instances through internal/systest). Run it with
//
//	make bench                 # RTT 20ms
//	make bench BENCH_RTT=50ms
//
// which runs
//
//	go test -tags bench -run '^TestBench$' -count=1 -timeout 15m -v ./bench -args -rtt=20ms
//
// It prints one Markdown table and writes it, with the parameters and the
// method, to bench/results.md. The statistics and the table live in this
// untagged part of the package, with ordinary unit tests.
package bench
