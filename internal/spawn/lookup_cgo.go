//go:build cgo

package spawn

/*
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <shadow.h>
#include <stdlib.h>
#include <sys/types.h>

// lookup_name wraps getpwnam_r so that Go never holds the result pointer:
// found says whether an entry exists, the return value is the error.
static int lookup_name(const char *name, struct passwd *pw, char *buf, size_t len, int *found) {
	struct passwd *res = NULL;
	int rc = getpwnam_r(name, pw, buf, len, &res);
	*found = res != NULL;
	return rc;
}

// lookup_uid is lookup_name for getpwuid_r.
static int lookup_uid(uid_t uid, struct passwd *pw, char *buf, size_t len, int *found) {
	struct passwd *res = NULL;
	int rc = getpwuid_r(uid, pw, buf, len, &res);
	*found = res != NULL;
	return rc;
}

// group_list wraps getgrouplist: it returns the number of groups stored, or
// -1 when groups is too small, in which case *n holds the size needed.
static int group_list(const char *name, gid_t gid, gid_t *groups, int *n) {
	return getgrouplist(name, gid, groups, n);
}
// lookup_shadow wraps getspnam_r: *found says whether an entry exists; on
// success days holds sp_lstchg, sp_max, sp_warn, sp_inact and sp_expire
// (-1: empty).
// The password field is not copied out: no account rule reads it.
static int lookup_shadow(const char *name, char *buf, size_t len, int *found, long days[5]) {
	struct spwd sp, *res = NULL;
	int rc = getspnam_r(name, &sp, buf, len, &res);
	*found = res != NULL;
	if (res != NULL) {
		days[0] = res->sp_lstchg;
		days[1] = res->sp_max;
		days[2] = res->sp_warn;
		days[3] = res->sp_inact;
		days[4] = res->sp_expire;
	}
	return rc;
}
*/
import "C"

import (
	"fmt"
	"strings"
	"syscall"
	"unsafe"
)

// maxPasswdBuf bounds the buffer offered to getpwnam_r and getpwuid_r: an entry needing
// more than this is an NSS backend gone wrong, and the lookup fails.
const maxPasswdBuf = 1 << 20

// maxGroups bounds the group list (Linux NGROUPS_MAX is 65536).
const maxGroups = 65536

// Lookup returns the account called name through the C library, so every
// NSS source the system is configured with (files, LDAP, SSSD,
// systemd-homed...) answers, exactly as for sshd. Groups comes from
// getgrouplist, as initgroups(3) would set it: every group the account is a
// member of, including its primary group. An empty shell becomes /bin/sh.
func Lookup(name string) (Account, error) {
	acct, err := LookupName(name)
	if err != nil {
		return Account{}, err
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	if acct.Groups, err = groupList(name, cname, acct.GID); err != nil {
		return Account{}, err
	}
	return acct, nil
}

// LookupName is Lookup without the group list (Groups is nil): for
// callers that only need to know which account a name is, such as the PAM
// hook resolving PAM_USER, and should not pay for getgrouplist on the login
// path. An empty shell becomes /bin/sh.
func LookupName(name string) (Account, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return Account{}, fmt.Errorf("invalid user name %q", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return lookupPasswd(fmt.Sprintf("user %q", name), func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int {
		return C.lookup_name(cname, pw, buf, size, found)
	})
}

// LookupUID returns the passwd entry of uid through the C library, like
// Lookup but without the group list (Groups is nil): for callers that only
// need the name, home and shell, such as the ForceCommand gate, and should
// not pay for getgrouplist on the login path. An empty shell becomes
// /bin/sh.
func LookupUID(uid uint32) (Account, error) {
	return lookupPasswd(fmt.Sprintf("uid %d", uid), func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int {
		return C.lookup_uid(C.uid_t(uid), pw, buf, size, found)
	})
}

// lookupPasswd calls get (getpwnam_r or getpwuid_r) with a buffer that
// grows on ERANGE up to maxPasswdBuf; what names the entry in errors. An
// empty shell becomes /bin/sh, as sshd reads it.
func lookupPasswd(what string, get func(pw *C.struct_passwd, buf *C.char, size C.size_t, found *C.int) C.int) (Account, error) {
	var pw C.struct_passwd
	for size := C.size_t(4096); size <= maxPasswdBuf; size *= 2 {
		buf := C.malloc(size)
		if buf == nil {
			return Account{}, fmt.Errorf("%s: out of memory", what)
		}
		var found C.int
		rc := get(&pw, (*C.char)(buf), size, &found)
		if syscall.Errno(rc) == syscall.ERANGE {
			C.free(buf)
			continue
		}
		var a Account
		if rc == 0 && found != 0 {
			a = Account{
				Name:  C.GoString(pw.pw_name),
				UID:   uint32(pw.pw_uid),
				GID:   uint32(pw.pw_gid),
				Home:  C.GoString(pw.pw_dir),
				Shell: C.GoString(pw.pw_shell),
			}
			if a.Shell == "" {
				a.Shell = "/bin/sh"
			}
		}
		C.free(buf)
		switch {
		case rc != 0:
			return Account{}, fmt.Errorf("%s: passwd lookup failed: %w", what, syscall.Errno(rc))
		case found == 0:
			return Account{}, fmt.Errorf("%s has no passwd entry", what)
		}
		return a, nil
	}
	return Account{}, fmt.Errorf("%s: passwd entry larger than %d bytes", what, maxPasswdBuf)
}

func groupList(name string, cname *C.char, gid uint32) ([]uint32, error) {
	n := C.int(32)
	for {
		if n <= 0 || n > maxGroups {
			return nil, fmt.Errorf("user %q: getgrouplist wants %d groups", name, int(n))
		}
		buf := make([]C.gid_t, int(n))
		got := C.group_list(cname, C.gid_t(gid), &buf[0], &n)
		if got < 0 {
			// n now holds the size needed (glibc); grow at least twofold
			// in case a C library does not update it.
			if need := 2 * C.int(len(buf)); n < need {
				n = need
			}
			continue
		}
		groups := make([]uint32, 0, int(got))
		seen := make(map[uint32]bool, int(got))
		for _, g := range buf[:int(got)] {
			if !seen[uint32(g)] {
				seen[uint32(g)] = true
				groups = append(groups, uint32(g))
			}
		}
		return groups, nil
	}
}

// Shadow returns what the shadow database (through NSS) says about name's
// ability to log in: the password aging fields and the account's expiry
// date (see ShadowInfo and CheckLogin). found is false when there is no
// shadow entry or it cannot be read (not root, or an NSS source without
// shadow data): the caller then knows nothing, and must not invent a
// refusal.
func Shadow(name string) (info ShadowInfo, found bool, err error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return noShadow(), false, fmt.Errorf("invalid user name %q", name)
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	for size := 1024; size <= maxPasswdBuf; size *= 2 {
		buf := C.malloc(C.size_t(size))
		var cfound C.int
		var days [5]C.long
		rc := C.lookup_shadow(cname, (*C.char)(buf), C.size_t(size), &cfound, &days[0])
		C.free(buf)
		switch {
		case syscall.Errno(rc) == syscall.ERANGE:
			continue
		case rc == 0 && cfound != 0:
			info = ShadowInfo{LastChange: int64(days[0]), MaxDays: int64(days[1]), WarnDays: int64(days[2]),
				InactiveDays: int64(days[3]), ExpireDays: int64(days[4])}
			return info, true, nil
		case rc == 0, syscall.Errno(rc) == syscall.ENOENT, syscall.Errno(rc) == syscall.EACCES:
			return noShadow(), false, nil
		default:
			return noShadow(), false, fmt.Errorf("shadow entry of %s: %w", name, syscall.Errno(rc))
		}
	}
	return noShadow(), false, fmt.Errorf("shadow entry of %s: larger than %d bytes", name, maxPasswdBuf)
}
