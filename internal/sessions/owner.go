package sessions

import (
	"os"
	"syscall"
)

// statOwner is the owner uid of fi, and false when the platform does not
// say.
func statOwner(fi os.FileInfo) (uint32, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}
