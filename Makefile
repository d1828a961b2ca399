# Redfin: one entry point for building, running and testing.
#   make run    install what is missing, build, start bmcd on https://127.0.0.1:8443 (libvirt test driver)
#   make test   the whole suite: style, lints, unit + integration tests (test driver and a real
#               libvirtd with a tiny TCG guest), DMTF Service Validator and Use-Case Checkers,
#               the load and fault tests (make reliability), then the firmware image built and
#               booted under QEMU (make qemu-test)
SHELL := /bin/bash
CARGO ?= cargo
LISTEN ?= 127.0.0.1:8443
LIBVIRT_URI ?= test:///default
RUN_STATE ?= target/run-state

.PHONY: clients all deps build release release-lean run run-reset test fmt-check lint unit conformance e2e clean image qemu-test reliability

all: build

deps:
	@./scripts/install-deps.sh

# bmcd and console-proxy (the workspace's default members).
build: deps
	$(CARGO) build --locked -p bmcd -p console-proxy

# The release build for size (docs/performance.md): panic=abort needs no unwind
# tables, so neither the Rust code nor the C code (SQLite) gets them, and the
# linker (rust-lld) drops the ones rustc emits anyway (scripts/no-eh-frame.ld).
# Relative relocations are packed (DT_RELR, glibc 2.36 or later). bmcd and
# console-proxy are built one at a time: built together, cargo unifies their
# dependencies' features and bmcd carries console-proxy's (about 40 KB).
RELEASE_RUSTFLAGS ?= -C force-unwind-tables=no -C link-arg=-Wl,--no-eh-frame-hdr \
	-C link-arg=-Wl,-T,$(CURDIR)/scripts/no-eh-frame.ld -C link-arg=-Wl,-z,pack-relative-relocs
RELEASE_CFLAGS ?= -fno-asynchronous-unwind-tables -fno-unwind-tables

release: deps
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" CFLAGS="$(RELEASE_CFLAGS)" $(CARGO) build --locked --release -p bmcd
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" CFLAGS="$(RELEASE_CFLAGS)" $(CARGO) build --locked --release -p console-proxy

# bmcd without the libvirt-library feature (no libvirt.so; it speaks libvirt's RPC protocol to a
# daemon itself), same flags, as target/release/bmcd-lean. The default target/release/bmcd is
# built again afterwards (cargo keeps both artifacts, so that build only relinks).
release-lean: deps
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" CFLAGS="$(RELEASE_CFLAGS)" $(CARGO) build --locked --release -p bmcd --no-default-features --features webui
	cp target/release/bmcd target/release/bmcd-lean
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" CFLAGS="$(RELEASE_CFLAGS)" $(CARGO) build --locked --release -p bmcd
	RUSTFLAGS="$(RELEASE_RUSTFLAGS)" CFLAGS="$(RELEASE_CFLAGS)" $(CARGO) build --locked --release -p console-proxy

run: release
	@mkdir -p $(RUN_STATE)
	@if [ ! -e $(RUN_STATE)/bmcd.sqlite3 ]; then echo "First start: bmcd prints the admin password once, below."; \
	 else echo "State kept in $(RUN_STATE) (admin password as printed at first start; 'make run-reset' starts over)."; fi
	./target/release/bmcd --listen $(LISTEN) --libvirt-uri $(LIBVIRT_URI) --state-dir $(RUN_STATE)

run-reset:
	rm -rf $(RUN_STATE)

fmt-check:
	$(CARGO) fmt --all -- --check

lint: deps
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p bmcd --no-default-features --features webui --all-targets -- -D warnings

unit: deps clients
	$(CARGO) test --locked --workspace

# The vendor-side Python clients (sushy, sushy-oem-idrac, proliantutils) the
# tests drive bmcd with, in venvs under target/, made once from PyPI.
clients:
	@./scripts/python-clients.sh

conformance: build
	./tests/conformance/run.sh

# make bench        bmcd (target/release/bmcd-lean) against sushy-tools on 127.0.0.1 (about 15
#                   minutes), both clients of one private libvirtd (needs root) that hosts the
#                   test driver; target/release/bmcd (with libvirt.so) on the in-process
#                   test:///default as a reference row. Rewrites the generated part of
#                   docs/performance.md and bench/results/
# make bench-smoke  the same phases, a few seconds each (under 2 minutes); checks only that every
#                   phase ran and gave numbers. Uses the debug binary for both unless BENCH_BMCD
#                   (and BENCH_BMCD_LIBRARY, the reference) are set.
BENCH_BMCD ?= target/debug/bmcd
BENCH_BMCD_LIBRARY ?= target/debug/bmcd

.PHONY: bench bench-smoke fuzz fuzz-smoke

# make fuzz-smoke  every fuzz target of fuzz/ for a few seconds (FUZZ_SECONDS, default 8), from
#                  the corpus kept in fuzz/corpus and fuzz/regressions; fails on any crash
# make fuzz        the long runs (FUZZ_SECONDS per target, default 300) with their figures;
#                  FUZZ_TARGETS="query body" picks targets. See docs/reliability.md.
fuzz-smoke:
	./scripts/fuzz.sh smoke

fuzz:
	./scripts/fuzz.sh long

bench: release release-lean
	python3 bench/run.py --mode full --publish --bmcd target/release/bmcd-lean --bmcd-library target/release/bmcd

bench-smoke:
	$(CARGO) build --locked
	python3 bench/run.py --mode smoke --bmcd $(BENCH_BMCD) --bmcd-library $(BENCH_BMCD_LIBRARY)

# make reliability  the load test (200 keep-alive TLS clients for RELIABILITY_LOAD_SECONDS, 60 by
#                   default: zero errors, flat memory) and the fault tests (libvirtd killed,
#                   bmcd SIGKILLed, full state directory, hostile clients, hanging webhook) on the
#                   bmcd binary (RELIABILITY_BMCD, the debug build by default); needs root.
#                   See docs/reliability.md.
RELIABILITY_BMCD ?= target/debug/bmcd
RELIABILITY_LOAD_SECONDS ?= 60

reliability: deps
	$(CARGO) build --locked -p bmcd
	REDFIN_BMCD=$(abspath $(RELIABILITY_BMCD)) REDFIN_LOAD_SECONDS=$(RELIABILITY_LOAD_SECONDS) \
	  $(CARGO) test --locked -p redfin-tests --test reliability_load --test reliability_faults -- --nocapture --test-threads=1

# The firmware image (kernel + initramfs, and a GPT disk with banks A/B and a
# data partition), its signed update package, and its boot and firmware-update tests under
# QEMU TCG: see docs/image.md.
image: release
	image/build.sh target/image

qemu-test: image
	qemu-tests/run.sh target/image

test: deps fmt-check lint unit fuzz-smoke conformance bench-smoke reliability qemu-test

clean:
	$(CARGO) clean
