package users

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/latch-ssh/latch-ssh/internal/pathtrust"
)

// PermissionError says why a file or directory is not safe to trust, and
// the command that makes it safe: the one error of package pathtrust.
type PermissionError = pathtrust.Error

// policy is the rule for latch.toml, its secret_file and ca_file: owned by
// root (or by the user this process runs as, when that is not root: tests,
// an unprivileged demo), no one else may write them or any directory on
// their way; a sticky directory such as /tmp is accepted above the file's
// own directory. private: the file holds the Latch secret, which no one
// else may read either.
func policy(private bool) pathtrust.Policy {
	p := pathtrust.Policy{
		Sticky:   true,
		Private:  private,
		FileRisk: "change it",
		DirRisk:  "replace what it holds",
		ReadRisk: "read the Latch secret",
	}
	if euid := os.Geteuid(); euid != 0 {
		p.User, p.HasUser, p.UserName = uint32(euid), true, "the user latch-ssh runs as"
	}
	return p
}

// CheckFile checks fi, the Stat of an open file at path (Stat the open
// file, not the path, so the checked file is the one read): a regular file
// owned by root (or this process's user) that no one else can write, nor
// read when holdsSecret. It returns a *PermissionError.
func CheckFile(path string, fi os.FileInfo, holdsSecret bool) error {
	return pathtrust.CheckFile(path, fi, policy(holdsSecret))
}

// CheckDirs checks dir and every directory above it, like sshd's
// StrictModes: each must be owned by root (or this process's user) and not
// writable by group or others, else someone else could swap the files
// below. One exception keeps /tmp usable: a sticky directory above dir
// (only an entry's owner may rename it there). dir must be absolute; the
// symbolic links on its way are followed and the directories holding them
// checked too. It returns a *PermissionError.
func CheckDirs(dir string) error {
	if !filepath.IsAbs(dir) {
		return fmt.Errorf("checking %s: not an absolute path", dir)
	}
	_, err := pathtrust.CheckDir(dir, policy(false))
	return err
}

// openChecked opens the regular file at path for reading after checking
// every directory and symbolic link leading to it (pathtrust.Open). It
// returns the open file, its symlink-free path and its Stat, for the caller
// to pass to CheckFile: whether the file holds a secret may only be known
// after reading it. A relative path is taken from the working directory.
func openChecked(path string) (*os.File, string, os.FileInfo, error) {
	if !filepath.IsAbs(path) {
		// Not filepath.Abs, which cleans: "link/.." is the parent of
		// the link's target, as for the kernel, not the working
		// directory.
		wd, err := os.Getwd()
		if err != nil {
			return nil, "", nil, fmt.Errorf("%s: %w", path, err)
		}
		path = wd + "/" + path
	}
	p := policy(false)
	p.CheckLater = true
	return pathtrust.Open(path, p)
}
