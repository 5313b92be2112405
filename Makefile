# latch-ssh build and test entry points. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/latch-ssh/latch-ssh/internal/version.version=$(VERSION)
STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
# Debian packages the integration tests drive for real.
DEB_PACKAGES := openssh-server openssh-client pamtester rsync git ssh-audit
FUZZTIME ?= 30s
# The SSH clients nobody here wrote that the embedded server's interop tests
# drive: PuTTY's tools and Python's asyncssh and paramiko.
DEB_PACKAGES += putty-tools python3-asyncssh python3-paramiko
# promtool (Debian's prometheus package) checks the example alerting rules
# and lints the metrics' names.
DEB_PACKAGES += prometheus

.PHONY: all build test vet staticcheck unit deps fuzz clean package package-test

all: build

build:
	CGO_ENABLED=1 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...

# deps installs the real tools the integration tests use (real sshd, ssh,
# scp, sftp, pamtester, rsync, git; PuTTY's plink, pscp, psftp and
# puttygen; Python's asyncssh and paramiko for Debian's /usr/bin/python3)
# when they are missing and we are root
# on a Debian-like machine. Elsewhere the tests that need them skip, except
# under CI=true, where a missing tool fails the run.
deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "not installed:$$missing (integration tests will skip)"; fi; \
	fi

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

staticcheck: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 ./...

test: deps vet staticcheck unit

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) bash .ci/fuzz.sh

clean:
	rm -rf bin dist

# package builds dist/latch-ssh_$(PKG_VERSION)_amd64.deb and .rpm with nfpm,
# kept out of go.mod (go run pkg@version). PKG_VERSION comes from git
# describe (packaging/version.sh) and is compiled into the binaries.
NFPM_VERSION := v2.45.2
NFPM := $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
PKG_VERSION ?= $(shell packaging/version.sh 2>/dev/null || echo 0.0.0~unknown)
PKG_MAINTAINER ?= latch-ssh maintainers <latch-ssh@users.noreply.github.com>
PKG_STAGE := dist/stage

package:
	@case "$(PKG_VERSION)" in v*|*[!A-Za-z0-9.+~]*) echo "package: bad PKG_VERSION '$(PKG_VERSION)' (Debian: digits first, then [A-Za-z0-9.+~])"; exit 1;; esac
	rm -rf $(PKG_STAGE) dist/latch-ssh_*.deb dist/latch-ssh_*.rpm
	mkdir -p $(PKG_STAGE)/bin $(PKG_STAGE)/man
	CGO_ENABLED=1 $(GO) build -trimpath -buildmode=pie \
	  -ldflags '-s -w -X github.com/latch-ssh/latch-ssh/internal/version.version=$(PKG_VERSION)' \
	  -o $(PKG_STAGE)/bin/ ./cmd/latch-ssh ./cmd/latch-check
	$(GO) run ./packaging/cmd/mangen -out $(PKG_STAGE)/man -version '$(PKG_VERSION)' \
	  -date "$$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%d 2>/dev/null || date -u +%F)"
	gzip -9n $(PKG_STAGE)/man/*
	{ printf 'latch-ssh (%s) unstable; urgency=medium\n\n  * Built from git commit %s.\n\n -- %s  %s\n' \
	  '$(PKG_VERSION)' "$$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" '$(PKG_MAINTAINER)' \
	  "$$(LC_ALL=C TZ=UTC git log -1 --format=%cd --date=format-local:'%a, %d %b %Y %H:%M:%S +0000' 2>/dev/null || LC_ALL=C date -uR)"; } \
	  | gzip -9n > $(PKG_STAGE)/changelog.gz
	@# libc6 >= the newest GLIBC_x.y symbol version the binaries use.
	glibc="$$(objdump -T $(PKG_STAGE)/bin/* 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)"; \
	export LATCH_VERSION='$(PKG_VERSION)' LATCH_MAINTAINER='$(PKG_MAINTAINER)' LATCH_LIBC_DEP="libc6 (>= $${glibc:-2.34})"; \
	$(NFPM) package --config packaging/nfpm.yaml --packager deb --target 'dist/latch-ssh_$(PKG_VERSION)_amd64.deb' && \
	$(NFPM) package --config packaging/nfpm.yaml --packager rpm --target 'dist/latch-ssh_$(PKG_VERSION)_amd64.rpm'
	@ls -l dist/*.deb dist/*.rpm

# package-test builds the packages, inspects them, installs, upgrades,
# removes and purges the .deb, runs lintian, the embedded-server recipe
# and, in a private mount namespace, the maintainer scripts and the
# pam-auth-update profile. Root, Debian-like system; it installs the tools
# it needs with apt-get and leaves the package purged. Under CI=true a
# missing tool fails it. CI runs it after `make test` (.ci/run).
package-test:
	bash packaging/test-package.sh

# bench measures what a latch costs a login, side by side with plain OpenSSH
# (issue 7), against the fake Latch with BENCH_RTT injected; prints one
# Markdown table and writes it to bench/results.md. Root and the real
# OpenSSH (make deps); not part of `make test`. Under 10 minutes on 2 CPUs.
BENCH_RTT ?= 20ms
.PHONY: bench
bench: deps
	$(GO) test -tags bench -run '^TestBench$$' -count=1 -timeout 15m -v ./bench -args -rtt=$(BENCH_RTT)
