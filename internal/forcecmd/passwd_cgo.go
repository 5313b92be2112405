//go:build cgo

package forcecmd

/*
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/types.h>

// lookup_uid wraps getpwuid_r so that Go never holds the result pointer:
// found says whether an entry exists, the return value is the error.
static int lookup_uid(uid_t uid, struct passwd *pw, char *buf, size_t len, int *found) {
	struct passwd *res = NULL;
	int rc = getpwuid_r(uid, pw, buf, len, &res);
	*found = res != NULL;
	return rc;
}
*/
import "C"

import (
	"fmt"
	"syscall"
	"unsafe"
)

// maxPasswdBuf bounds the buffer offered to getpwuid_r: an entry needing
// more than this is an NSS backend gone wrong, and the gate denies.
const maxPasswdBuf = 1 << 20

// lookupPasswd reads the passwd entry of uid through the C library, so
// every NSS source the system is configured with (files, LDAP, SSSD,
// systemd-homed...) answers, exactly as for sshd. os/user (with cgo) does
// the same lookup but does not return the login shell, which the gate
// needs; one getpwuid_r call gives name, home and shell consistently.
func lookupPasswd(uid int) (passwdEntry, error) {
	var pw C.struct_passwd
	for size := C.size_t(4096); size <= maxPasswdBuf; size *= 2 {
		buf := C.malloc(size)
		if buf == nil {
			return passwdEntry{}, fmt.Errorf("uid %d: out of memory", uid)
		}
		var found C.int
		rc := C.lookup_uid(C.uid_t(uid), &pw, (*C.char)(buf), size, &found)
		if syscall.Errno(rc) == syscall.ERANGE {
			C.free(buf)
			continue
		}
		var e passwdEntry
		if rc == 0 && found != 0 {
			e = passwdEntry{
				Name:  C.GoString(pw.pw_name),
				UID:   int(pw.pw_uid),
				Home:  C.GoString(pw.pw_dir),
				Shell: C.GoString(pw.pw_shell),
			}
		}
		C.free(unsafe.Pointer(buf))
		switch {
		case rc != 0:
			return passwdEntry{}, fmt.Errorf("uid %d: passwd lookup failed: %w", uid, syscall.Errno(rc))
		case found == 0:
			return passwdEntry{}, fmt.Errorf("uid %d has no passwd entry", uid)
		}
		return e, nil
	}
	return passwdEntry{}, fmt.Errorf("uid %d: passwd entry larger than %d bytes", uid, maxPasswdBuf)
}
