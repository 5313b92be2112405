package spawn

import (
	"encoding/binary"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Terminal mode opcodes of RFC 4254 section 8 that applyModes knows, with
// the termios field they set. Unknown opcodes are ignored, as OpenSSH
// does: a client's modes are its preferences, never a reason to refuse.
var (
	ccModes = map[byte]int{
		1: unix.VINTR, 2: unix.VQUIT, 3: unix.VERASE, 4: unix.VKILL, 5: unix.VEOF,
		6: unix.VEOL, 7: unix.VEOL2, 8: unix.VSTART, 9: unix.VSTOP, 10: unix.VSUSP,
		12: unix.VREPRINT, 13: unix.VWERASE, 14: unix.VLNEXT, 18: unix.VDISCARD,
	}
	iflagModes = map[byte]uint32{
		30: unix.IGNPAR, 31: unix.PARMRK, 32: unix.INPCK, 33: unix.ISTRIP, 34: unix.INLCR,
		35: unix.IGNCR, 36: unix.ICRNL, 37: unix.IUCLC, 38: unix.IXON, 39: unix.IXANY,
		40: unix.IXOFF, 41: unix.IMAXBEL, 42: unix.IUTF8,
	}
	lflagModes = map[byte]uint32{
		50: unix.ISIG, 51: unix.ICANON, 52: unix.XCASE, 53: unix.ECHO, 54: unix.ECHOE,
		55: unix.ECHOK, 56: unix.ECHONL, 57: unix.NOFLSH, 58: unix.TOSTOP, 59: unix.IEXTEN,
		60: unix.ECHOCTL, 61: unix.ECHOKE, 62: unix.PENDIN,
	}
	oflagModes = map[byte]uint32{
		70: unix.OPOST, 71: unix.OLCUC, 72: unix.ONLCR, 73: unix.OCRNL, 74: unix.ONOCR, 75: unix.ONLRET,
	}
	cflagModes = map[byte]uint32{
		90: unix.CS7, 91: unix.CS8, 92: unix.PARENB, 93: unix.PARODD,
	}
)

// applyModes sets the encoded terminal modes of an SSH pty-req (RFC 4254
// section 8: opcode byte, uint32 argument, ..., TTY_OP_END) on tty, before
// the session starts, as sshd's tty_parse_modes does: the client's erase
// character, echo, signals and so on. Parsing stops at TTY_OP_END, at an
// opcode of 160 or more (whose argument format is not defined), or at a
// truncated entry.
func applyModes(tty *os.File, modes []byte) error {
	if len(modes) == 0 {
		return nil
	}
	fd := int(tty.Fd())
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("spawn: read terminal modes: %w", err)
	}
	for len(modes) >= 5 {
		op := modes[0]
		if op == 0 || op >= 160 {
			break
		}
		v := binary.BigEndian.Uint32(modes[1:5])
		modes = modes[5:]
		set := func(flags *uint32, bit uint32) {
			if v != 0 {
				*flags |= bit
			} else {
				*flags &^= bit
			}
		}
		if i, ok := ccModes[op]; ok {
			t.Cc[i] = byte(v)
		} else if bit, ok := iflagModes[op]; ok {
			set(&t.Iflag, bit)
		} else if bit, ok := lflagModes[op]; ok {
			set(&t.Lflag, bit)
		} else if bit, ok := oflagModes[op]; ok {
			set(&t.Oflag, bit)
		} else if bit, ok := cflagModes[op]; ok {
			if bit == unix.CS7 || bit == unix.CS8 {
				if v != 0 {
					t.Cflag = t.Cflag&^unix.CSIZE | bit
				}
				continue
			}
			set(&t.Cflag, bit)
		}
	}
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("spawn: set terminal modes: %w", err)
	}
	return nil
}
