// Package repocheck holds tests about the repository itself rather than
// about any one package: only source goes into the tree. A built binary
// committed by accident (a 10.7 MB unstripped latch-ssh once was) makes
// every clone heavier for good and can be mistaken for a release; the
// tests here fail the build when one is tracked.
package repocheck

import (
	"bytes"
	"fmt"
)

// MaxFileSize is the largest tracked file allowed outside a testdata
// directory. Source files are far smaller; anything larger is generated
// output or a binary that belongs in a release, not in git.
const MaxFileSize = 1 << 20

// binaryMagics are the first bytes of the executable and object formats a
// Go toolchain (or a C compiler next to it) can produce.
var binaryMagics = [][]byte{
	[]byte("\x7fELF"),        // Linux, BSD
	{0xfe, 0xed, 0xfa, 0xce}, // Mach-O 32-bit
	{0xfe, 0xed, 0xfa, 0xcf}, // Mach-O 64-bit
	{0xcf, 0xfa, 0xed, 0xfe}, // Mach-O 64-bit, little-endian
	{0xce, 0xfa, 0xed, 0xfe}, // Mach-O 32-bit, little-endian
	{0xca, 0xfe, 0xba, 0xbe}, // Mach-O universal
	[]byte("MZ"),             // Windows PE
	[]byte("!<arch>\n"),      // ar archives (.a, Go's own .a files)
	[]byte("\x00asm"),        // WebAssembly
}

// Problem says what is wrong with a tracked file, or "" when nothing is.
// head is the file's first bytes (at least 8 when the file is that long),
// size its length, inTestdata whether it lives under a testdata directory
// (the Go tool's place for fixtures, which may be binary or large on
// purpose; executables are refused even there).
func Problem(path string, head []byte, size int64, inTestdata bool) string {
	for _, m := range binaryMagics {
		if bytes.HasPrefix(head, m) {
			return fmt.Sprintf("%s is an executable or object file (starts with %q): build it, do not commit it (add it to .gitignore)", path, m)
		}
	}
	if size > MaxFileSize && !inTestdata {
		return fmt.Sprintf("%s is %d bytes, over the %d-byte limit for files outside testdata: generated or binary output does not belong in the tree", path, size, MaxFileSize)
	}
	return ""
}
