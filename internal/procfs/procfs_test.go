package procfs

import (
	"os"
	"testing"
)

func TestParseStat(t *testing.T) {
	line := "4242 (a) b (c)) S 17 4242 4240 34816 4242 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0\n"
	st, err := ParseStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	want := Stat{PID: 4242, Comm: "a) b (c)", State: 'S', PPID: 17, PGRP: 4242, Session: 4240, TTY: 34816, Start: 987654}
	if st != want {
		t.Errorf("ParseStat = %+v, want %+v", st, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2", "1 (x) S 1 a b 0 -1 0 0 0 0 0 0 0 0 0 0 0 0 0 z", "1 (x S 1", "1 (x) S 1 2 3", "x (y) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q): no error", bad)
		}
	}
}

func TestSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil || st.PID != os.Getpid() || st.PPID != os.Getppid() || st.Start == 0 {
		t.Fatalf("ReadStat(self) = %+v, %v", st, err)
	}
	if uid, err := RealUID(os.Getpid()); err != nil || uid != os.Getuid() {
		t.Errorf("RealUID(self) = %d, %v; want %d", uid, err, os.Getuid())
	}
	if ExeBase(os.Getpid()) == "" {
		t.Error("ExeBase(self) is empty")
	}
	if _, err := parseRealUID([]byte("Name: x\n")); err == nil {
		t.Error("parseRealUID without a Uid line: no error")
	}
}

func TestPTS(t *testing.T) {
	// /dev/pts/3 is major 136 minor 3: tty_nr 136<<8 | 3.
	if n, ok := PTS(136<<8 | 3); !ok || n != 3 {
		t.Errorf("PTS(pts/3) = %d, %v", n, ok)
	}
	// /dev/pts/300: minor 300 = 0x12c: low byte 0x2c, high bits 0x100<<12.
	if n, ok := PTS(136<<8 | 0x2c | 0x100<<12); !ok || n != 300 {
		t.Errorf("PTS(pts/300) = %d, %v", n, ok)
	}
	if _, ok := PTS(4<<8 | 1); ok {
		t.Error("PTS(tty1) is a pts")
	}
}
