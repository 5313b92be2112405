package forcecmd

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// readCodeAsync runs readCode on slave in a goroutine.
func readCodeAsync(ctx context.Context, slave *os.File, g *ttyGuard, timeout time.Duration) <-chan codeResult {
	ch := make(chan codeResult, 1)
	go func() {
		code, err := readCode(ctx, slave, g, "Latch one-time code: ", timeout)
		ch <- codeResult{code, err}
	}()
	return ch
}

type codeResult struct {
	code string
	err  error
}

func waitCode(t *testing.T, ch <-chan codeResult) codeResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("readCode did not return")
		return codeResult{}
	}
}

func TestReadCode(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	// Typed before the prompt: discarded (TCSAFLUSH), so a paste or a
	// keystroke meant for something else cannot become the code.
	if _, err := master.WriteString("early\n"); err != nil {
		t.Fatal(err)
	}
	// Its echo shows the line discipline has it queued (pty input is
	// processed asynchronously).
	screen.waitFor(t, "early\r\n", 5*time.Second)
	var g ttyGuard
	ch := readCodeAsync(context.Background(), slave, &g, 10*time.Second)
	screen.waitFor(t, "Latch one-time code: ", 5*time.Second)
	if echoOn(t, slave) {
		t.Error("echo is on while the code is typed")
	}
	if _, err := master.WriteString("  s3cRet \n"); err != nil {
		t.Fatal(err)
	}
	r := waitCode(t, ch)
	if r.err != nil || r.code != "s3cRet" {
		t.Fatalf("readCode = %q, %v; want s3cRet", r.code, r.err)
	}
	screen.waitFor(t, "Latch one-time code: \r\n", 5*time.Second)
	// "early" was echoed when typed, before the prompt; the code never is.
	if _, after, _ := strings.Cut(screen.String(), "code: "); strings.Contains(after, "s3cRet") {
		t.Errorf("the code was echoed: %q", screen.String())
	}
	if !echoOn(t, slave) {
		t.Error("echo not restored")
	}
}

func TestReadCodeLongLine(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	var g ttyGuard
	ch := readCodeAsync(context.Background(), slave, &g, 10*time.Second)
	screen.waitFor(t, "code: ", 5*time.Second)
	// Longer than the read buffer: the whole line is consumed, the kept
	// part bounded.
	if _, err := master.WriteString(strings.Repeat("x", 1000) + "\n"); err != nil {
		t.Fatal(err)
	}
	r := waitCode(t, ch)
	if r.err != nil || r.code != strings.Repeat("x", maxCodeLine) {
		t.Fatalf("readCode = %d bytes, %v", len(r.code), r.err)
	}
}

func TestReadCodeTimeout(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	var g ttyGuard
	start := time.Now()
	ch := readCodeAsync(context.Background(), slave, &g, 200*time.Millisecond)
	r := waitCode(t, ch)
	if r.err == nil || r.code != "" {
		t.Fatalf("readCode = %q, %v; want a timeout", r.code, r.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("timeout of 200ms took %v", took)
	}
	if !echoOn(t, slave) {
		t.Error("echo not restored after a timeout")
	}
	screen.waitFor(t, "code: \r\n", 5*time.Second)
}

func TestReadCodeCancel(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	var g ttyGuard
	ctx, cancel := context.WithCancel(context.Background())
	ch := readCodeAsync(ctx, slave, &g, time.Minute)
	screen.waitFor(t, "code: ", 5*time.Second)
	cancel()
	r := waitCode(t, ch)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("readCode = %q, %v; want context.Canceled", r.code, r.err)
	}
	if !echoOn(t, slave) {
		t.Error("echo not restored after cancel")
	}
}

func TestReadCodeEOF(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	var g ttyGuard
	ch := readCodeAsync(context.Background(), slave, &g, 10*time.Second)
	screen.waitFor(t, "code: ", 5*time.Second)
	if _, err := master.Write([]byte{4}); err != nil { // Ctrl-D
		t.Fatal(err)
	}
	if r := waitCode(t, ch); !errors.Is(r.err, io.EOF) {
		t.Fatalf("readCode = %q, %v; want EOF", r.code, r.err)
	}
}

// TestTTYGuardRestoreFromAnotherGoroutine: the gate's main goroutine puts
// the terminal back while the prompt is still waiting (a signal, the
// overall deadline), before it prints its refusal.
func TestTTYGuardRestoreFromAnotherGoroutine(t *testing.T) {
	master, slave := openPTY(t)
	screen := watch(master)
	var g ttyGuard
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := readCodeAsync(ctx, slave, &g, time.Minute)
	screen.waitFor(t, "code: ", 5*time.Second)
	g.restore()
	if !echoOn(t, slave) {
		t.Fatal("echo not restored by the other goroutine")
	}
	cancel()
	waitCode(t, ch)
	g.restore() // idempotent
	if !echoOn(t, slave) {
		t.Fatal("echo off after the second restore")
	}
}

func TestIsTerminal(t *testing.T) {
	_, slave := openPTY(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	var ptyFD, pipeFD int
	control(slave, func(fd int) { ptyFD = fd })
	control(r, func(fd int) { pipeFD = fd })
	if !isTerminal(ptyFD) || isTerminal(pipeFD) {
		t.Fatalf("isTerminal: pty %v, pipe %v", isTerminal(ptyFD), isTerminal(pipeFD))
	}
}
