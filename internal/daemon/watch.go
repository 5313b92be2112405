package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/users"
)

// DefaultWatchDelay is how long the configuration file must stay quiet
// after a change before the daemon reloads it. Editors save in several
// steps (vim: write a new file, move the old one aside, move the new one
// in); reloading half way would read a missing or half-written file and
// log a refusal for nothing. A person's edit still applies well within a
// second.
const DefaultWatchDelay = 250 * time.Millisecond

// watchMask is what changes the configuration file: written in place
// (close after writing), replaced by a rename (an editor's or latch-ssh
// pair's atomic save), created, removed or moved away, and its mode or
// owner (which decide whether Load trusts it).
const watchMask = unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_CREATE |
	unix.IN_DELETE | unix.IN_ATTRIB | unix.IN_ONLYDIR

// watcher reports changes to the configuration file and its drop-ins
// through inotify. It watches the file's directory, not the file: an
// atomic save replaces the file's inode, and a watch on the old inode
// would see nothing after the first save. When the path is a symbolic
// link, the directory of the file it leads to is watched too (a link into
// a configuration-management tree). The drop-in directory (latch.d beside
// the path) is watched as well, for *.toml names (users.IsDropInName) and
// its own mode and owner; while it does not exist, its creation is seen in
// the parent directory and the watch is added then. A drop-in that is a
// symbolic link is watched by its name only: a change to its target
// applies on SIGHUP.
type watcher struct {
	f  *os.File
	fd int
	// names maps a watch descriptor to the file name that matters in its
	// directory.
	names map[int32]string
	// parent is the watch of the directory that holds the drop-in
	// directory; dropDir is that directory's path and dropWD its watch,
	// -1 while it is not watched.
	parent  int32
	dropDir string
	dropWD  int32
}

// newWatcher sets up the watches for path. Events queue in the kernel from
// here on, so a change made while the daemon is still starting is not
// lost.
func newWatcher(path string) (*watcher, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", path, err)
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("watching %s: inotify: %w", path, err)
	}
	// Non-blocking, so os.File reads through the runtime's poller and
	// Close ends a pending Read.
	w := &watcher{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, names: map[int32]string{},
		dropDir: users.DropInDir(abs), dropWD: -1}
	targets := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil && real != abs {
		targets = append(targets, real)
	}
	for i, t := range targets {
		wd, err := unix.InotifyAddWatch(fd, filepath.Dir(t), watchMask)
		if err != nil {
			w.f.Close()
			return nil, fmt.Errorf("watching %s: %w", filepath.Dir(t), err)
		}
		w.names[int32(wd)] = filepath.Base(t)
		if i == 0 {
			w.parent = int32(wd)
		}
	}
	w.watchDropIns()
	return w, nil
}

// watchDropIns adds the watch of the drop-in directory, when it exists.
// Adding it again is harmless (the kernel returns the same descriptor for
// the same directory), so it is called on every event about the
// directory's name in its parent: created, moved in, replaced by a link
// to another directory.
func (w *watcher) watchDropIns() {
	wd, err := unix.InotifyAddWatch(w.fd, w.dropDir, watchMask)
	if err != nil {
		return // absent, or not a directory: Load says what is wrong
	}
	w.dropWD = int32(wd)
}

// hit reports whether an event (its watch and the name it carries) is
// about the configuration: the file, the drop-in directory, or a drop-in.
func (w *watcher) hit(wd int32, name string) bool {
	switch {
	case wd == w.dropWD:
		// "" is the directory itself: its mode or owner.
		return name == "" || users.IsDropInName(name)
	case wd == w.parent && name == users.DropInDirName:
		w.watchDropIns()
		return true
	}
	return name == w.names[wd]
}

// run reads events until ctx is done and, once the file has been quiet for
// delay after a change, sends on changed (without blocking: one pending
// signal is enough, the reload reads the file as it is then). It closes
// the inotify descriptor before returning.
func (w *watcher) run(ctx context.Context, delay time.Duration, changed chan<- struct{}, logf func(string)) {
	hits := make(chan struct{}, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		w.read(hits, logf)
	}()
	defer func() {
		w.f.Close() // ends the reader's Read
		<-readDone
	}()
	timer := time.NewTimer(delay)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case _, ok := <-hits:
			if !ok {
				return
			}
			timer.Reset(delay)
		case <-timer.C:
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}

// read turns raw inotify events into hits on the configuration file. It
// closes hits when the descriptor is closed or fails.
func (w *watcher) read(hits chan<- struct{}, logf func(string)) {
	defer close(hits)
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				logf(fmt.Sprintf("watching the configuration stopped: %v; edits now apply on SIGHUP (systemctl reload latch-ssh) only", err))
			}
			return
		}
		hit := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : min(n, off+unix.SizeofInotifyEvent+int(ev.Len))]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i] // the kernel pads names with NULs
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				// Events were lost: the file may have changed.
				hit = true
			case ev.Mask&unix.IN_IGNORED != 0 && ev.Wd == w.dropWD:
				// The drop-in directory was removed: the parent's
				// event about its name is the hit; a new one is
				// watched when it appears.
				w.dropWD = -1
			case ev.Mask&unix.IN_IGNORED != 0:
				logf(fmt.Sprintf("no longer watching the directory of %s (removed or unmounted); edits there apply on SIGHUP only", w.names[ev.Wd]))
			case w.hit(ev.Wd, string(name)):
				hit = true
			}
		}
		if hit {
			select {
			case hits <- struct{}{}:
			default:
			}
		}
	}
}
