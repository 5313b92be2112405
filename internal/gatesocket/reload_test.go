package gatesocket_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/latch-ssh/latch-ssh/gate"
	"github.com/latch-ssh/latch-ssh/internal/gatesocket"
)

// TestApplyToDaemon: root's pair and unpair return only once the daemon has
// put the file in force, and say so when it has not; no daemon at all is
// not an error (the file is read when one starts).
func TestApplyToDaemon(t *testing.T) {
	ctx := context.Background()
	t.Run("no daemon", func(t *testing.T) {
		if err := gatesocket.ApplyToDaemon(ctx, filepath.Join(t.TempDir(), "gate.sock")); err != nil {
			t.Errorf("no socket: %v, want nil", err)
		}
	})
	t.Run("reloaded", func(t *testing.T) {
		var calls atomic.Int32
		path := startSocket(t, &gatesocket.SocketServer{Core: func() *gate.Core { return &gate.Core{} },
			Reload: func(context.Context) error { calls.Add(1); return nil }})
		if err := gatesocket.ApplyToDaemon(ctx, path); err != nil || calls.Load() != 1 {
			t.Errorf("ApplyToDaemon: %v after %d reloads, want nil after 1", err, calls.Load())
		}
	})
	t.Run("reload refused", func(t *testing.T) {
		path := startSocket(t, &gatesocket.SocketServer{Core: func() *gate.Core { return &gate.Core{} },
			Reload: func(context.Context) error { return errors.New("the file has 2 problems") }})
		err := gatesocket.ApplyToDaemon(ctx, path)
		if err == nil || !strings.Contains(err.Error(), "did not put the change in force: the file has 2 problems") {
			t.Errorf("ApplyToDaemon: %v, want the daemon's reason", err)
		}
	})
	// A daemon from before the reload op answers deny, like any unknown op.
	for name, answer := range map[string]string{
		"older daemon":    `{"v":1,"outcome":"deny","message":"latch-ssh: access denied"}` + "\n",
		"no answer":       "",
		"another version": `{"v":2,"ok":true}` + "\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "gate.sock")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				buf := make([]byte, 512)
				c.Read(buf)
				c.Write([]byte(answer))
			}()
			err = gatesocket.ApplyToDaemon(ctx, path)
			want := "did not confirm that the change is in force"
			if name == "older daemon" {
				want = "a daemon older than this command: restart it"
			}
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ApplyToDaemon: %v, want %q", err, want)
			}
		})
	}
}
