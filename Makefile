# Build and test targets for lvmvol.
#
# `make test` is the full check: Debian packages, the virtualenv, the unit
# tests on the host, then the VM suite on a real kernel with device-mapper.
# The VM suite boots a throwaway VM with virtme-ng (tests/vm/run-vm)
# because lvmvol needs dm-thin-pool and dm-crypt, and creating LVM volumes
# on the host could damage it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv

# Extra arguments for pytest inside the VM, for example
#   make vm-test PYTEST_ARGS='-k snapshot -x'
PYTEST_ARGS ?=
# The VM suite runs in this many VMs at once, one per CPU core, each with
# every N-th test (tests/vm/run-shards).
# Seconds each shard's VM may run. A shard takes about 55 minutes on an idle
# 2-core host; the default leaves room for a slower or busier one.
VM_TIMEOUT ?= 5000
VM_SHARDS ?= $(shell n=$$(nproc); [ "$$n" -gt 4 ] && n=4; echo $$n)

# qemu-system-x86, a Debian kernel and busybox-static are what virtme-ng
# boots (busybox builds its initramfs). The rest are the tools that lvmvol
# and the VM suite run inside the VM, which sees the host's root filesystem.
DEB_PACKAGES := \
	qemu-system-x86 linux-image-amd64 busybox-static \
	lvm2 cryptsetup-bin thin-provisioning-tools udev \
	xfsprogs e2fsprogs kmod util-linux \
	python3 python3-venv

.PHONY: help deps venv unit vm-test test demo bench replay

help:
	@echo "make deps     install the Debian packages (as root)"
	@echo "make venv     create .venv with lvmvol, its test extra and virtme-ng"
	@echo "make unit     run the unit tests on the host"
	@echo "make vm-test  run the VM suite in a throwaway VM (PYTEST_ARGS='...' for pytest)"
	@echo "make test     all of the above; fails if any step fails"
	@echo "make demo     run tests/vm/demo.sh in a throwaway VM"
	@echo "make bench    run benchmarks/run.py in a throwaway VM (BENCH_ARGS='...' for it)"
	@echo "make replay   time lvmvol's own work on this CPU against a replayed lvs (benchmarks/replay.py)"

deps:
	@missing=""; \
	for package in $(DEB_PACKAGES); do \
		status=$$(dpkg-query -W -f='$${Status}' "$$package" 2>/dev/null || true); \
		if [ "$$status" != "install ok installed" ]; then missing="$$missing $$package"; fi; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "deps: all Debian packages are installed"; \
		exit 0; \
	fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
		echo "deps: missing Debian packages:$$missing; run 'make deps' as root" >&2; \
		exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get update; \
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEB_PACKAGES)

# tests/vm/run-vm depends on how this release boots the guest and passes on
# its output and exit status. Raise it only after make vm-test passes with
# the new release.
VIRTME_NG_VERSION := 1.42

# The stamp records a finished install, so the venv is rebuilt only when
# pyproject.toml or VIRTME_NG_VERSION changes, or an earlier install failed
# part way.
VENV_STAMP := $(VENV)/.installed-virtme-ng-$(VIRTME_NG_VERSION)
$(VENV_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -e '.[test]'
	$(VENV)/bin/python -m pip install 'virtme-ng==$(VIRTME_NG_VERSION)'
	touch $@

venv: $(VENV_STAMP)

# pytest exits with 5 when it collects no tests. That is accepted only
# while tests/unit contains no test files, so a broken collection still fails.
unit: venv
	@if [ ! -d tests/unit ]; then \
		echo "unit: tests/unit does not exist; no unit tests to run"; \
		exit 0; \
	fi; \
	status=0; \
	$(VENV)/bin/python -m pytest -q tests/unit || status=$$?; \
	if [ "$$status" -eq 5 ] && [ -z "$$(find tests/unit -name 'test_*.py' -o -name '*_test.py')" ]; then \
		echo "unit: tests/unit contains no test files yet"; \
		status=0; \
	fi; \
	exit "$$status"

# The guest writes no bytecode into the shared checkout, so compile it here:
# every import inside the VM then reads one .pyc instead of parsing source.
vm-test: venv
	$(VENV)/bin/python -m compileall -q lvmvol tests
	LVMVOL_VM_TIMEOUT=$(VM_TIMEOUT) tests/vm/run-shards $(VM_SHARDS) python -m pytest -p no:cacheprovider -ra tests/vm $(PYTEST_ARGS)

# The benchmark runs lvmvol on the distribution's python3, the interpreter
# administrators run it with, in a venv of its own that holds lvmvol's
# dependencies; lvmvol itself comes from this checkout (PYTHONPATH). The
# development interpreter that builds .venv may be a pyenv build with a
# shared libpython, which starts several times slower under emulation.
BENCH_PYTHON ?= /usr/bin/python3
BENCH_VENV := .bench-venv
BENCH_ARGS ?=
$(BENCH_VENV)/.installed: pyproject.toml
	$(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet .
	touch $@

bench: deps venv $(BENCH_VENV)/.installed
	$(VENV)/bin/python -m compileall -q lvmvol benchmarks
	tests/vm/run-vm $(BENCH_VENV)/bin/python benchmarks/run.py $(BENCH_ARGS)

# No VM and no lvm2 command: safe on any host.
replay: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/replay.py

demo: deps venv
	tests/vm/run-vm bash tests/vm/demo.sh

# The steps run one after another, also under make -j, and the first one
# that fails stops the run.
test: deps
	$(MAKE) --no-print-directory venv
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory vm-test
