//go:build linux && (386 || arm)

package asuser

import "golang.org/x/sys/unix"

// The credential system calls that take 32-bit ids: on 386 and arm the
// plain numbers are the old 16-bit calls.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysGetgroups = unix.SYS_GETGROUPS32
	sysSetresuid = unix.SYS_SETRESUID32
	sysSetresgid = unix.SYS_SETRESGID32
	sysGetresuid = unix.SYS_GETRESUID32
	sysGetresgid = unix.SYS_GETRESGID32
	sysSetfsuid  = unix.SYS_SETFSUID32
	sysSetfsgid  = unix.SYS_SETFSGID32
)
