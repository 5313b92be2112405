package sessions

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/latch-ssh/latch-ssh/internal/procfs"
)

// Proc is the tracker's view of the processes of the system: /proc in
// production (SystemProc), a made-up process tree in unit tests.
type Proc interface {
	// Stat reads /proc/PID/stat.
	Stat(pid int) (procfs.Stat, error)
	// UID is the real uid of pid.
	UID(pid int) (int, error)
	// Exe is the base name of pid's executable ("" when unreadable).
	Exe(pid int) string
	// PIDs lists every process.
	PIDs() ([]int, error)
	// Signal sends sig to the process id names, only if it is still that
	// process (same pid and start time).
	Signal(id ProcID, sig syscall.Signal) error
}

// ProcID names one process for the life of the system: a pid and its
// start time (field 22 of /proc/PID/stat). A pid reused by another
// process has another start time, so it is never taken for this one.
type ProcID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// ErrGone says the process a ProcID names no longer exists: Proc.Signal
// returns it rather than signal another process.
var ErrGone = errors.New("the process is gone")

// SystemProc is Proc on the real /proc.
type SystemProc struct{}

// Stat reads /proc/PID/stat.
func (SystemProc) Stat(pid int) (procfs.Stat, error) { return procfs.ReadStat(pid) }

// UID reads the real uid of pid.
func (SystemProc) UID(pid int) (int, error) { return procfs.RealUID(pid) }

// Exe is the base name of pid's executable.
func (SystemProc) Exe(pid int) string { return procfs.ExeBase(pid) }

// PIDs lists /proc.
func (SystemProc) PIDs() ([]int, error) { return procfs.PIDs() }

// Signal opens a pidfd for id.PID, checks that the process behind it has
// id.Start, and signals through the pidfd: a pid reused between the check
// and the signal cannot be hit, since the pidfd keeps naming the process
// it was opened for.
func (SystemProc) Signal(id ProcID, sig syscall.Signal) error {
	if id.PID <= 1 || id.PID == os.Getpid() {
		return fmt.Errorf("refusing to signal pid %d", id.PID)
	}
	fd, err := unix.PidfdOpen(id.PID, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrGone
		}
		return fmt.Errorf("pidfd_open %d: %w", id.PID, err)
	}
	defer unix.Close(fd)
	st, err := procfs.ReadStat(id.PID)
	if err != nil || st.Start != id.Start || st.Dead() {
		return ErrGone
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return ErrGone
		}
		return fmt.Errorf("signal %d: %w", id.PID, err)
	}
	return nil
}
