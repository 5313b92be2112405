package sshserver

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

// chunkWriter records the size of every Write and refuses ReadFrom, which
// io.Copy would prefer to the caller's buffer.
type chunkWriter struct {
	t      *testing.T
	buf    bytes.Buffer
	writes []int
}

func (w *chunkWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.buf.Write(p)
}

func (w *chunkWriter) ReadFrom(io.Reader) (int64, error) {
	w.t.Error("copyPTY used the destination's ReadFrom (io.Copy's own 32 KiB buffer)")
	return 0, io.ErrUnexpectedEOF
}

// TestCopyPTY: a terminal session's copies move everything through their
// small buffer, never through io.Copy's 32 KiB one, which every idle
// session would otherwise hold twice (bench/results.md, part 4).
func TestCopyPTY(t *testing.T) {
	data := make([]byte, 100<<10+123)
	rand.Read(data)
	w := &chunkWriter{t: t}
	// bytes.Reader has WriteTo, which io.Copy would prefer too.
	copyPTY(w, bytes.NewReader(data))
	if !bytes.Equal(w.buf.Bytes(), data) {
		t.Fatalf("copied %d bytes, not the %d given", w.buf.Len(), len(data))
	}
	for _, n := range w.writes {
		if n > ptyCopyBuffer {
			t.Fatalf("a write of %d bytes: the copy did not go through the %d-byte buffer", n, ptyCopyBuffer)
		}
	}
}
