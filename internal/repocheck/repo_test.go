package repocheck

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProblem shows the classifier catching what it is for, so
// TestTrackedFiles cannot pass by accident.
func TestProblem(t *testing.T) {
	for _, tc := range []struct {
		name       string
		head       []byte
		size       int64
		inTestdata bool
		bad        bool
	}{
		{"latch-ssh", []byte("\x7fELF\x02\x01\x01\x00"), 10769056, false, true},
		{"small-elf", []byte("\x7fELF\x02\x01\x01\x00"), 900, false, true},
		{"testdata/elf", []byte("\x7fELF\x02\x01\x01\x00"), 900, true, true},
		{"tool.exe", []byte("MZ\x90\x00"), 4096, false, true},
		{"lib.a", []byte("!<arch>\n"), 4096, false, true},
		{"main.go", []byte("package main\n"), 2000, false, false},
		{"run.sh", []byte("#!/bin/sh\nexit 0\n"), 20, false, false},
		{"big.json", []byte("{\"a\":"), MaxFileSize + 1, false, true},
		{"testdata/big.json", []byte("{\"a\":"), MaxFileSize + 1, true, false},
		{"edge.txt", []byte("x"), MaxFileSize, false, false},
	} {
		got := Problem(tc.name, tc.head, tc.size, tc.inTestdata)
		if (got != "") != tc.bad {
			t.Errorf("Problem(%s) = %q, want a problem: %v", tc.name, got, tc.bad)
		}
	}
}

// TestTrackedFiles fails when git tracks an executable binary, or a file
// over MaxFileSize outside testdata. It reads what git tracks, not what is
// on disk, so `make build` output in bin/ does not count.
func TestTrackedFiles(t *testing.T) {
	root := moduleRoot(t)
	git, err := exec.LookPath("git")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("git is needed to list the tracked files")
		}
		t.Skip("git not installed")
	}
	out, err := exec.Command(git, "-C", root, "ls-files", "-z").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("git ls-files in %s: %v", root, err)
		}
		t.Skipf("not a git checkout (%v)", err)
	}
	files := strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
	if len(files) < 10 {
		t.Fatalf("git ls-files listed only %d files; expected the whole tree", len(files))
	}
	checked := 0
	for _, rel := range files {
		fi, err := os.Lstat(filepath.Join(root, rel))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		head, err := readHead(filepath.Join(root, rel), 16)
		if err != nil {
			t.Fatal(err)
		}
		inTestdata := strings.HasPrefix(rel, "testdata/") || strings.Contains(rel, "/testdata/")
		if p := Problem(rel, head, fi.Size(), inTestdata); p != "" {
			t.Error(p)
		}
		checked++
	}
	t.Logf("%d tracked files checked", checked)
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	k, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:k], nil
}

// moduleRoot is the directory holding go.mod, found upwards from the test's
// working directory (the package directory under go test).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.Contains(b, []byte("module github.com/latch-ssh/latch-ssh")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod of github.com/latch-ssh/latch-ssh not found above the test's directory")
		}
		dir = parent
	}
}
