//go:build linux && !386 && !arm

package asuser

import "golang.org/x/sys/unix"

// The credential system calls that take 32-bit ids. (On 386 and arm the
// plain numbers are the old 16-bit calls; see sysnum32.go.)
const (
	sysSetgroups = unix.SYS_SETGROUPS
	sysGetgroups = unix.SYS_GETGROUPS
	sysSetresuid = unix.SYS_SETRESUID
	sysSetresgid = unix.SYS_SETRESGID
	sysGetresuid = unix.SYS_GETRESUID
	sysGetresgid = unix.SYS_GETRESGID
	sysSetfsuid  = unix.SYS_SETFSUID
	sysSetfsgid  = unix.SYS_SETFSGID
)
