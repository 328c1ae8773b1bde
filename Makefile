# Two entry points (see README.md): `make demo` and `make test`. Both install what they
# need first. Everything else is plain CMake under build/.
BUILD      ?= build
ASAN_BUILD ?= build-asan
ASAN_JOBS  ?= $(shell nproc)
LABCTL_WERROR ?= OFF
# ccache, where installed, makes rebuilds in other checkouts (worktrees) of the tree cheap.
LAUNCHER  := $(if $(shell command -v ccache),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLABCTL_WERROR=$(LABCTL_WERROR) $(LAUNCHER)
LABCTL = $(BUILD)/labctl/labctl

PREFIX    ?= /usr/local

.PHONY: setup build asan demo test unit host kernel install deb bench bench-lab bench-agents bench-checks bench-impair bench-live bench-vm bench-multihost clean

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD)

# The unit tier again under AddressSanitizer and UndefinedBehaviorSanitizer, unoptimized:
# GCC takes ~3x longer to optimize instrumented code (-O2: 54 s for model/validate.cc,
# -O0: 19 s), the sanitized unit tier runs in seconds either way, and -O0 hides nothing
# from the sanitizers. -g1 keeps the line tables a sanitizer report needs and drops the
# descriptions of locals: 15-20% less compile time.
asan: setup
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
	  -DLABCTL_WERROR=$(LABCTL_WERROR) $(LAUNCHER) \
	  -DLABCTL_SANITIZE=ON -DLABCTL_BENCH=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) --target unit_tests --parallel $(ASAN_JOBS)

# Only the two programs the demo runs, not the tests and benches.
demo: setup
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) --target labctl labagent
	@scripts/demo.sh $(LABCTL)

# The ASan build runs inside run-tests.sh, beside the kernel tier's micro-VM (see there).
test: build
	@scripts/run-tests.sh --build-asan $(BUILD) $(ASAN_BUILD)

unit: build
	@ctest --test-dir $(BUILD) -L unit --output-on-failure

host: build
	@ctest --test-dir $(BUILD) -L host --output-on-failure

kernel: build
	@scripts/run-tests.sh --kernel-only $(BUILD)

# labctl and labagent in $(PREFIX)/bin, man pages (from --help), bash completion.
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

# A Debian package of what `make install` installs, in $(BUILD) (docs/ci.md).
deb: build
	@cd $(BUILD) && cpack -G DEB

# Benchmarks (docs/bench.md): ratios against baselines measured in the same run.
bench: bench-lab bench-agents bench-checks bench-impair bench-live bench-multihost

bench-lab: build
	@$(BUILD)/bench/labctl_bench

bench-agents: build
	@$(BUILD)/bench/labagent_bench

# netem needs the micro-VM where this kernel has none; tbf and clear are measured here.
bench-impair: build
	@$(BUILD)/bench/labctl_impair_bench

# A live edit end to end (labctl link ...) against labctl status (docs/bench.md).
bench-live: build
	@bench/live_edit_bench.sh $(LABCTL)

# A lab across 1, 2 and 3 simulated hosts over ssh against one machine (docs/multihost.md).
bench-multihost: build
	@$(BUILD)/bench/labctl_multihost_bench

# `labctl check` needs IPVS: in the micro-VM unless this kernel has it.
bench-checks: build
	@bench/check_bench.sh $(LABCTL)

# A lab in its own micro-VM: `up --check dr-demo` against `vm exec -- true` (docs/bench.md).
bench-vm: build
	@bench/vm_lab_bench.sh $(LABCTL)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
