package users

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
)

// DropInDirName is the name of the drop-in directory, beside the main
// file: /etc/latch-ssh/latch.d for /etc/latch-ssh/latch.toml, and
// DIR/latch.d for `-c DIR/FILE`, so a configuration given with -c brings
// its own drop-ins, as sshd_config.d does for sshd_config.
const DropInDirName = "latch.d"

// DefaultPairingFile is the drop-in the packaged latch.toml names in
// [policy] pairing_file: the one file latch-ssh pair writes new pairings
// to, so that configuration management may own latch.toml.
const DefaultPairingFile = DropInDirName + "/50-paired.toml"

// Source is where a setting is written: a file and a 1-based line (0 when
// unknown).
type Source struct {
	File string
	Line int
}

// String formats the source as "file:line", or "file" when the line is
// unknown.
func (s Source) String() string {
	if s.Line > 0 {
		return fmt.Sprintf("%s:%d", s.File, s.Line)
	}
	return s.File
}

// DropInDir returns the drop-in directory of the configuration at path.
func DropInDir(path string) string {
	return filepath.Join(filepath.Dir(path), DropInDirName)
}

// IsDropInName reports whether a file named name in the drop-in directory
// is read: it ends in ".toml" and does not start with "." (what the shell
// glob *.toml matches). Everything else is ignored, on purpose: an
// editor's backup ("50-x.toml~", "50-x.toml.swp"), an Emacs lock
// (".#50-x.toml"), dpkg's "50-x.toml.dpkg-old", "-new" and "-dist", an
// rpm ".rpmsave", a disabled "50-x.toml.off" are all copies or leftovers
// whose settings must not come back to life.
func IsDropInName(name string) bool {
	return strings.HasSuffix(name, ".toml") && len(name) > len(".toml") && !strings.HasPrefix(name, ".")
}

// dropIns lists the drop-ins of the configuration at path in the order
// they are read (byte-wise lexical, as the shell sorts in the C locale),
// and the names in the directory that are ignored. A missing directory
// has none; one that cannot be trusted (pathtrust's rule, as for the
// file's own directory) or read is an error, because it could hide or add
// settings.
func dropIns(path string) (files, ignored []string, err error) {
	dir := DropInDir(path)
	abs := dir
	if !filepath.IsAbs(abs) {
		wd, err := os.Getwd()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
		abs = wd + "/" + dir
	}
	real, err := checkDirTrust(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("drop-in directory %s: %w", dir, err)
	}
	d, err := os.OpenFile(real, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("drop-in directory %s: %w", dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the drop-in directory %s: %w", dir, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if IsDropInName(n) {
			files = append(files, filepath.Join(dir, n))
		} else {
			ignored = append(ignored, filepath.Join(dir, n))
		}
	}
	return files, ignored, nil
}

// checkDirTrust is CheckDirs for an absolute directory, returning its
// symlink-free path.
func checkDirTrust(abs string) (string, error) {
	return pathtrust.CheckDir(abs, policy(false))
}

// loadSources reads the main file at path and its drop-ins with every
// check Load makes: each must be safe to trust, and one holding a secret
// readable by root only. Errors of several files are joined.
func loadSources(path string) ([]source, error) {
	data, _, _, err := readConfig(path)
	if err != nil {
		return nil, err
	}
	srcs := []source{{file: path, data: data}}
	files, _, err := dropIns(path)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, f := range files {
		data, _, _, err := readConfig(f)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		srcs = append(srcs, source{file: f, data: data})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return srcs, nil
}

// merge adds the decoded file src (source i) into dst, the files before
// it merged. Tables merge key by key, at every depth: a drop-in may add a
// [users] line, a [policy] key latch.toml does not set, or a whole
// [server] table. A key (any value that is not a table: a string, a
// number, a list) set by two files is an error naming both places, never
// an override: with files owned by different people (configuration
// management, latch-ssh pair, a person) a silent "last file wins" would
// let one of them change a setting the other believes is in force. Lists
// are values, not merged either. For the same reason the same user in
// [users] of two files is an error, and so is a user's [instances] entry
// in two files (the ids of one user's latches belong together, with the
// account they were made for).
func (c *checker) merge(dst, src map[string]any, path []string, i int) {
	for _, k := range slices.Sorted(maps.Keys(src)) {
		p := append(slices.Clone(path), k)
		sv := src[k]
		dv, exists := dst[k]
		if !exists {
			dst[k] = sv
			c.setOrigin(p, sv, i)
			continue
		}
		dm, dIsTable := dv.(map[string]any)
		sm, sIsTable := sv.(map[string]any)
		// A user's entry is one thing, whatever its shape: never merged.
		isUser := len(p) == 2 && (p[0] == "users" || p[0] == "instances")
		if dIsTable && sIsTable && !isUser {
			c.merge(dm, sm, p, i)
			continue
		}
		first := Source{File: c.srcs[c.origin[joinPath(p)]].file, Line: c.srcs[c.origin[joinPath(p)]].idx.line(p...)}
		here := Source{File: c.srcs[i].file, Line: c.srcs[i].idx.line(p...)}
		msg := fmt.Sprintf("is set in both %s and %s", first, here)
		fix := "set it in one file only: a drop-in adds keys, it does not override them"
		if isUser {
			msg = fmt.Sprintf("%s is mapped in both %s and %s", show(k), first, here)
			fix = "keep one of the two lines: a user is mapped in one file only (latch-ssh pair writes [policy] pairing_file)"
			if p[0] == "instances" {
				msg = fmt.Sprintf("%s has instances in both %s and %s", show(k), first, here)
				fix = "keep one of the two lines (latch-ssh pair --repair writes the one in the file that holds it)"
			}
		}
		c.probs = append(c.probs, Problem{File: here.File, Line: here.Line, Key: displayKey(p), Message: msg, Fix: fix})
	}
}

// setOrigin records source i as the origin of path and of everything in
// the table v, when it is one.
func (c *checker) setOrigin(path []string, v any, i int) {
	c.origin[joinPath(path)] = i
	if m, ok := v.(map[string]any); ok {
		for k, sv := range m {
			c.setOrigin(append(slices.Clone(path), k), sv, i)
		}
	}
}

// pairingFile reads [policy] pairing_file: a drop-in "latch.d/NAME.toml"
// (default DefaultPairingFile), returned as the path of that file beside
// main, or the main file's own name ("latch.toml") for new pairings to go
// into the main file. Anything else is refused: a file latch-ssh does not
// read would take pairings that never apply.
//
// Why a drop-in by default (issue 17): on a fleet, configuration
// management owns latch.toml and rewrites it whole; a pairing written
// there would be lost at its next run. A single server loses nothing by
// the split, and check-config --users shows where each user is mapped.
func (c *checker) pairingFile(t *table) string {
	main := c.srcs[0].file
	v, ok := t.str("pairing_file", DefaultPairingFile)
	if !ok {
		return ""
	}
	if v == filepath.Base(main) {
		return main
	}
	dir, name := filepath.Split(v)
	if filepath.Clean(dir) != DropInDirName || !IsDropInName(name) || strings.ContainsAny(name, "/\x00") {
		t.report("pairing_file", fmt.Sprintf("%s is not a drop-in like %q: latch-ssh reads %s and %s/*.toml only, so pairings written elsewhere would never apply",
			show(v), DefaultPairingFile, filepath.Base(main), DropInDirName),
			fmt.Sprintf("pairing_file = %q (or %q to write pairings into %s itself)", DefaultPairingFile, filepath.Base(main), filepath.Base(main)))
		return ""
	}
	return filepath.Join(DropInDir(main), name)
}

// FileFor returns the file latch-ssh pair and unpair edit for user: the
// file that maps the user, else [policy] pairing_file (a drop-in by
// default), else the main file (only for a Config not made by Load).
func (c *Config) FileFor(user string) string { return c.fileFor(c.UserSources, user) }

// InstancesFileFor returns the file whose [instances] table latch-ssh pair
// edits for user: the file that holds the user's entry, else [policy]
// pairing_file, else the main file. (An entry written into another file
// than the one holding it would be a key set in two files: an error.)
func (c *Config) InstancesFileFor(user string) string { return c.fileFor(c.InstanceSources, user) }

// fileFor is the file of user's entry in sources, else pairing_file, else
// the main file.
func (c *Config) fileFor(sources map[string]Source, user string) string {
	if s, ok := sources[user]; ok {
		return s.File
	}
	if c.Policy.PairingFile != "" {
		return c.Policy.PairingFile
	}
	return c.Path
}

// pairingHeader starts a pairing file that CreatePairingFile creates.
const pairingHeader = `# Written by latch-ssh pair and latch-ssh unpair: the local users paired
# with a Latch account on this server. Configuration management should
# leave this file alone (and template latch.toml, or another drop-in,
# instead); see DROP-INS in latch.toml(5).
[users]
`

// CreatePairingFile creates the pairing file at path (a drop-in, see
// [policy] pairing_file) when it does not exist: mode 0600, owned by this
// process's user (root), holding a header comment and an empty [users]
// table; its directory is created too (mode 0755) when missing. The file
// appears whole or not at all (it is written aside, then linked into
// place), and an existing file is left as it is.
func CreatePairingFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating the drop-in directory %s: %w", dir, err)
	}
	if _, err := os.Lstat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // there already (or unreadable: the edit says why)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := tmp.WriteString(pairingHeader); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	// Link, not rename: it fails when another process created the file
	// meanwhile, whose content then stays.
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	return nil
}
