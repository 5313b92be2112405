package users

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Inspection is everything Inspect found wrong with a configuration (the
// main file and its drop-ins) in one pass, for `latch-ssh check-config`:
// a file that others can read is still parsed, and a value with a problem
// does not hide the others, so the admin fixes everything in one round
// instead of meeting the next problem only after fixing the last (issue
// 13, point 5).
type Inspection struct {
	// Path is the main file inspected.
	Path string
	// Files is every file read: Path, then the drop-ins in the order
	// they are merged.
	Files []string
	// Ignored lists the entries of the drop-in directory that are not
	// read (IsDropInName): editor backups, dpkg leftovers.
	Ignored []string
	// Config is what did parse, the entries with a problem left out; nil
	// when a file could not be read or is not TOML. It is for reporting
	// only: never decide with it, since Load refuses the configuration as
	// long as Problems is not empty.
	Config *Config
	// Problems is every reason Load refuses the configuration, in the
	// order found (permissions first, then each file's lines in order,
	// then the files they name), each located as closely as the files
	// allow and with its fix.
	Problems Problems
	// Err is set when a file could not be read at all (the main file does
	// not exist, say); then nothing else is known about it.
	Err error
	c   *checker
}

// Locate returns the file and line that define the key or table path
// ("users", "alice"), else its nearest parent's, else the main file and
// line 0.
func (in *Inspection) Locate(path ...string) (string, int) {
	if in.c == nil {
		return in.Path, 0
	}
	return in.c.locate(path)
}

// Line returns the line that defines the key or table path in the file
// Locate names.
func (in *Inspection) Line(path ...string) int {
	_, line := in.Locate(path...)
	return line
}

// Problem returns a Problem located at the key path of the inspected
// configuration.
func (in *Inspection) Problem(path []string, msg, fix string) Problem {
	file, line := in.Locate(path...)
	return Problem{File: file, Line: line, Key: displayKey(path), Message: msg, Fix: fix}
}

// Inspect reports every problem of the configuration at path (and its
// drop-ins) that Load would refuse it for, all at once. Load and Inspect
// agree: Load(path) succeeds exactly when Inspect(path) has neither
// Problems nor Err. It may read a file Load refuses to trust (one others
// can write), to report what else is wrong in it; what it read is only
// ever printed, never used to decide.
func Inspect(path string) *Inspection {
	in := &Inspection{Path: path}
	data, err := in.read(path)
	if err != nil {
		in.Err = err
		return in
	}
	srcs := []source{{file: path, data: data}}
	files, ignored, err := dropIns(path)
	in.Ignored = ignored
	var perm *PermissionError
	switch {
	case errors.As(err, &perm):
		in.Problems = append(in.Problems, Problem{File: perm.Path, Message: perm.Problem, Fix: perm.Fix})
	case err != nil:
		in.Err = err
		return in
	}
	for _, f := range files {
		data, err := in.read(f)
		if err != nil {
			in.Err = err
			return in
		}
		srcs = append(srcs, source{file: f, data: data})
	}
	for _, s := range srcs {
		in.Files = append(in.Files, s.file)
	}
	cfg, c := parseSources(srcs)
	in.c = c
	in.Problems = append(in.Problems, c.probs...)
	if cfg == nil {
		return in
	}
	in.Config = cfg
	if cfg.Latch.SecretFile != "" {
		secret, err := readSecretFile(cfg.Latch.SecretFile)
		if err != nil {
			in.Problems = append(in.Problems, in.fileProblem([]string{"latch", "secret_file"}, err,
				fmt.Sprintf("put the %d-character secret in %s, readable by root only (chmod 600), or correct the path", secretKind.length, cfg.Latch.SecretFile)))
		}
		cfg.Latch.Secret = secret
	}
	if cfg.Latch.CAFile != "" {
		if err := checkCAFile(cfg.Latch.CAFile); err != nil {
			in.Problems = append(in.Problems, in.fileProblem([]string{"latch", "ca_file"}, err,
				"put the PEM roots there, or remove ca_file to use the system's roots"))
		}
	}
	return in
}

// read reads one file of the configuration with Load's checks; a file
// they refuse is reported as a problem and read anyway.
func (in *Inspection) read(path string) ([]byte, error) {
	data, _, _, err := readConfig(path)
	var perm *PermissionError
	if errors.As(err, &perm) {
		in.Problems = append(in.Problems, Problem{File: perm.Path, Message: perm.Problem, Fix: perm.Fix})
		data, err = readUnchecked(path)
	}
	return data, err
}

// fileProblem locates err, about the file named by the key at path, at
// that key's line. fix is for errors that bring none of their own.
func (in *Inspection) fileProblem(path []string, err error, fix string) Problem {
	var p *Problem
	var perm *PermissionError
	switch {
	case errors.As(err, &p):
		q := *p
		q.File, q.Line = in.Locate(path...)
		return q
	case errors.As(err, &perm):
		return in.Problem(path, perm.Path+" "+perm.Problem, perm.Fix)
	}
	return in.Problem(path, err.Error(), fix)
}

// readUnchecked reads the configuration at path without the permission
// checks, for Inspect only, which reports those itself: it must not hang
// on a FIFO, nor read something that is not a regular file.
func readUnchecked(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a latch-ssh configuration", path, maxConfigSize)
	}
	return data, nil
}
