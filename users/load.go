package users

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
)

// maxConfigSize bounds what Load reads; a real configuration is a few KiB.
const maxConfigSize = 1 << 20

// Load reads the configuration at path, then its drop-ins (DropInDir:
// latch.d/*.toml beside it, in lexical order), merges them (a key or user
// set in two files is an error naming both) and validates the result,
// refusing files that are not safe to trust (see CheckFile and CheckDirs):
// each file and the drop-in directory, and any secret_file and ca_file
// they name. It reads the secret from secret_file. The error is a
// *PermissionError, Problems, an I/O error, or several of them joined
// (errors.As finds each); it never holds the secret.
func Load(path string) (*Config, error) {
	srcs, err := loadSources(path)
	if err != nil {
		return nil, err
	}
	cfg, c := parseSources(srcs)
	if len(c.probs) > 0 {
		return nil, c.probs
	}
	var errs []error
	if cfg.Latch.SecretFile != "" {
		secret, err := readSecretFile(cfg.Latch.SecretFile)
		if err != nil {
			var p *Problem
			if errors.As(err, &p) {
				p.File, p.Line = c.locate([]string{"latch", "secret_file"})
				err = Problems{*p}
			}
			errs = append(errs, fmt.Errorf("[latch] secret_file: %w", err))
		}
		cfg.Latch.Secret = secret
	}
	if cfg.Latch.CAFile != "" {
		if err := checkCAFile(cfg.Latch.CAFile); err != nil {
			errs = append(errs, fmt.Errorf("[latch] ca_file: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// readConfig reads the configuration file at path with every permission
// check Load makes, and returns it with its symlink-free path and Stat.
// Edits use it too, so they refuse exactly what Load refuses.
func readConfig(path string) ([]byte, string, os.FileInfo, error) {
	f, real, fi, err := openChecked(path)
	if err != nil {
		return nil, "", nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, "", nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, "", nil, fmt.Errorf("%s: larger than %d bytes, not a latch-ssh configuration", path, maxConfigSize)
	}
	if err := CheckFile(real, fi, holdsSecret(data)); err != nil {
		return nil, "", nil, err
	}
	return data, real, fi, nil
}

// holdsSecret reports whether a configuration holds a secret itself. It
// errs on the side of yes: any key named secret counts, even in a file
// that does not decode.
func holdsSecret(data []byte) bool {
	for _, l := range indexLines(data).lines {
		if l.kind == lineKeyValue && l.path[len(l.path)-1] == "secret" {
			return true
		}
	}
	var raw struct{ Latch map[string]any }
	_, err := toml.Decode(string(data), &raw)
	_, ok := raw.Latch["secret"]
	return err == nil && ok
}

// readSecretFile reads a secret_file, which must be safe like the
// configuration and unreadable by others. Content problems come back as a
// *Problem without File and Line, which only the caller knows.
func readSecretFile(path string) (Secret, error) {
	f, real, fi, err := openChecked(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := CheckFile(real, fi, true); err != nil {
		return "", err
	}
	const maxSecretFile = 4096
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if !isID(s, secretKind.length) {
		return "", &Problem{Key: "latch.secret_file", Message: fmt.Sprintf(
			"%s must hold exactly the %d-character secret (letters and digits, then optionally a newline); it holds %d bytes",
			path, secretKind.length, len(s)), Fix: secretKind.fix}
	}
	return Secret(s), nil
}

// checkCAFile checks that the CA roots file is safe to trust: whoever can
// change it can impersonate Latch.
func checkCAFile(path string) error {
	f, real, fi, err := openChecked(path)
	if err != nil {
		return err
	}
	f.Close()
	return CheckFile(real, fi, false)
}
