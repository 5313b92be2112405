package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The state file keeps the table across daemon restarts (an upgrade, a
// crash, systemctl restart): the sessions keep running while the daemon
// is away, and must still be rechecked after. It is JSON, root-only
// (0600), replaced whole (a temporary file renamed over it), in the
// daemon's runtime directory: /run is emptied at boot, when every session
// is gone anyway, and the systemd unit keeps the directory across restarts
// (RuntimeDirectoryPreserve=yes).
//
// An entry read back is kept only while its anchor still runs with the
// same start time and executable: a pid reused since is another process,
// and is forgotten, never signalled.

// stateFile is the file's content.
type stateFile struct {
	Version  int       `json:"version"`
	Sessions []Session `json:"sessions"`
}

const stateVersion = 1

// maxStateSize bounds what load reads.
const maxStateSize = 64 << 20

// load reads the state file into the table, keeping the live entries.
func (t *Tracker) load() {
	if t.o.Path == "" {
		return
	}
	b, err := readBounded(t.o.Path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var sf stateFile
	if err == nil {
		err = json.Unmarshal(b, &sf)
	}
	if err == nil && sf.Version != stateVersion {
		err = fmt.Errorf("version %d, want %d", sf.Version, stateVersion)
	}
	if err != nil {
		t.log.Error().Str("event", "session-state").Str("path", t.o.Path).Str("error", err.Error()).
			Msg("cannot read the session table: sessions from before this start are not rechecked")
		return
	}
	kept, dropped := 0, 0
	for i := range sf.Sessions {
		s := sf.Sessions[i]
		st, err := t.proc.Stat(s.Anchor.PID)
		if err != nil || st.Dead() || st.Start != s.Anchor.Start || s.Anchor.PID <= 1 ||
			!perLogin(s.Exe) || t.proc.Exe(s.Anchor.PID) != s.Exe || (s.FrontEnd != FrontEndPAM && s.FrontEnd != FrontEndForceCommand) {
			dropped++
			continue
		}
		t.table[s.key()] = &s
		kept++
	}
	t.log.Info().Str("event", "session-state").Str("path", t.o.Path).Int("kept", kept).Int("ended_meanwhile", dropped).
		Msg("session table loaded")
	if dropped > 0 {
		t.save()
	}
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxStateSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxStateSize)
	}
	if st, ok := statOwner(fi); ok && st != 0 {
		return nil, fmt.Errorf("%s is not owned by root", path)
	}
	b := make([]byte, fi.Size())
	_, err = f.ReadAt(b, 0)
	return b, err
}

// save writes the table to the state file. A failure is logged: the table
// in memory is still right.
func (t *Tracker) save() {
	if t.o.Path == "" {
		return
	}
	t.saveMu.Lock()
	defer t.saveMu.Unlock()
	t.mu.Lock()
	sf := stateFile{Version: stateVersion, Sessions: make([]Session, 0, len(t.table))}
	for _, s := range t.table {
		sf.Sessions = append(sf.Sessions, *s)
	}
	t.mu.Unlock()
	if err := writeAtomic(t.o.Path, sf); err != nil {
		t.log.Error().Str("event", "session-state").Str("path", t.o.Path).Str("error", err.Error()).
			Msg("cannot save the session table: a daemon restart would forget the sessions")
	}
}

func writeAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
