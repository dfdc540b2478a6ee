# muster — see README.md. Every target installs what it needs first (scripts/setup).
SWIFT ?= swift

.PHONY: build release demo test unit bench reliability fuzz templates deb tarball package package-test clean

build:
	bash scripts/setup
	$(SWIFT) build

release:
	bash scripts/setup
	$(SWIFT) build -c release --product muster

demo:
	bash scripts/demo

# The whole test suite: unit tests and end-to-end tests of the built binary.
test:
	MUSTER_SETUP_TEST=1 bash scripts/setup
	$(SWIFT) build
	$(SWIFT) test

bench:
	bash scripts/setup
	bash scripts/bench

# Issue 5's reliability suite at full size against the release binary; writes RELIABILITY.md.
reliability:
	bash scripts/reliability

# libFuzzer targets (Fuzz/), FUZZ_SECONDS each (default 60); results into RELIABILITY.md.
FUZZ_SECONDS ?= 60
fuzz:
	bash scripts/setup
	FUZZ_SECONDS=$(FUZZ_SECONDS) python3 scripts/fuzz

# A muster that runs without Swift: the release binary with the Swift runtime linked in
# (.build-static/), its man pages and bash/zsh/fish completions generated from it, as
# dist/muster_<version>_<arch>.deb and dist/muster-<version>-linux-<arch>.tar.gz (install.sh).
deb:
	bash scripts/package deb

tarball:
	bash scripts/package tarball

package:
	bash scripts/package all

# Builds both, installs the .deb with apt-get (root), runs the walkthrough with it outside
# any Swift toolchain, checks man pages and completions against the commands, removes it;
# then the tarball's install.sh into a temporary prefix.
package-test:
	bash scripts/test-package

# Regenerate the built-in copy of templates/ after editing it.
templates:
	python3 scripts/embed-templates

clean:
	rm -rf .build .build-static dist
