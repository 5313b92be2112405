package demo

import "strings"

// Command is one thing the person running the demo asks for, with a key
// in a terminal or a line on stdin.
type Command int

// The commands. None is input that asks for nothing (a blank line, a
// newline key); Unknown is anything else not listed.
const (
	None Command = iota
	CloseLatch
	OpenLatch
	ToggleOTP
	Quit
	Help
	Unknown
)

// String names c for messages.
func (c Command) String() string {
	switch c {
	case None:
		return "none"
	case CloseLatch:
		return "close the latch"
	case OpenLatch:
		return "open the latch"
	case ToggleOTP:
		return "toggle the one-time code"
	case Quit:
		return "quit"
	case Help:
		return "help"
	default:
		return "unknown"
	}
}

// ctrlD is the byte a terminal in cbreak mode sends for Ctrl-D: with
// ICANON off it no longer means end of file, so the demo takes it as q.
const ctrlD = 0x04

// esc starts the escape sequence a terminal sends for an arrow or function
// key.
const esc = 0x1b

// KeyCommand maps one key typed in a terminal (in cbreak mode, so one byte
// per key) to its command. Letters are case-insensitive; spaces, line
// ends and control keys but Ctrl-D (which quits) are None, so an Enter
// typed out of habit does nothing.
func KeyCommand(b byte) Command {
	if b == ctrlD {
		return Quit
	}
	if b <= ' ' || b >= 0x7f {
		// Spaces, line ends, other control keys, bytes of a non-ASCII
		// character.
		return None
	}
	return letterCommand(b)
}

// LineCommand maps one line of stdin (without a terminal, e.g. under a
// script) to its command: the first character that is not a space decides,
// so "l", " l" and "lock" all close the latch. A blank line is None.
func LineCommand(line string) Command {
	line = strings.TrimLeft(line, " \t\r\n\v\f")
	if line == "" {
		return None
	}
	return letterCommand(line[0])
}

// KeyCommands maps what one read of a terminal in cbreak mode returned
// (usually one key, several when typed fast or pasted) to commands, in
// order, leaving out None. The escape sequences of arrow and function keys
// (ESC [ ... final, ESC O x) are skipped as a whole rather than taken as the
// letters they hold; an ESC not followed by [ or O is ignored by itself.
func KeyCommands(chunk []byte) []Command {
	var cmds []Command
	for i := 0; i < len(chunk); i++ {
		b := chunk[i]
		if b == esc && i+1 < len(chunk) {
			switch chunk[i+1] {
			case 'O': // SS3: one more byte
				i += 2
				continue
			case '[': // CSI: parameters and intermediates, then a final byte
				i += 2
				for i < len(chunk) && (chunk[i] < 0x40 || chunk[i] > 0x7e) {
					i++
				}
				continue
			}
		}
		if c := KeyCommand(b); c != None {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

func letterCommand(b byte) Command {
	switch b {
	case 'l', 'L':
		return CloseLatch
	case 'o', 'O':
		return OpenLatch
	case 't', 'T':
		return ToggleOTP
	case 'q', 'Q':
		return Quit
	case 'h', 'H', '?':
		return Help
	default:
		return Unknown
	}
}
