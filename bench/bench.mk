# bench/bench.mk - benchmark workloads and the `bench` targets.
#
# Included from the top-level Makefile, or used alone:
#   make -f bench/bench.mk [BUILD=build] [LIB=...] bench-quick
# Expects BUILD (build directory) and LIB (the library under test); CC and
# CXX come from make's defaults or the caller. Workloads link no allocator:
# they use whatever malloc is preloaded. BENCH_ARGS passes options to
# bench/run.py, e.g. BENCH_ARGS='--reps 5 --only churn'. make bench adds the
# rows ringpool-harden, ringpool-profile (RINGPOOL_PROFILE at the default
# rate) and ringpool-nostats (a build without counters).

# Targets defined here must not become the includer's default goal.
BENCH_SAVED_GOAL := $(.DEFAULT_GOAL)

BUILD ?= build
LIB ?= $(BUILD)/libringpool.so.1
BENCH_OUT := $(BUILD)/bench
BENCH_ARGS ?=

# -fno-builtin-*: every malloc/free in the source is a real call, never
# folded away by the compiler.
BENCH_CFLAGS ?= -O2 -g
BENCH_CXXFLAGS ?= -O2 -g
BENCH_REQ_FLAGS := -pthread -fno-builtin-malloc -fno-builtin-calloc \
	-fno-builtin-realloc -fno-builtin-free -MMD -MP

BENCH_C_SRCS := $(wildcard bench/workloads/*.c)
BENCH_CXX_SRCS := $(wildcard bench/workloads/*.cpp)
BENCH_BINS := $(patsubst bench/workloads/%.c,$(BENCH_OUT)/%,$(BENCH_C_SRCS)) \
	$(patsubst bench/workloads/%.cpp,$(BENCH_OUT)/%,$(BENCH_CXX_SRCS)) \
	$(BENCH_OUT)/spawn


# Used alone, nothing here can build $(LIB): run.py then skips the ringpool
# row with a note instead of make stopping on a missing prerequisite.
ifeq ($(notdir $(firstword $(MAKEFILE_LIST))),bench.mk)
BENCH_LIB_DEP :=
else
BENCH_LIB_DEP := $(LIB)
endif

.PHONY: bench bench-quick bench-bins bench-clean

bench-bins: $(BENCH_BINS)

$(BENCH_OUT)/%: bench/workloads/%.c | $(BENCH_OUT)/
	$(SAY) CC $@
	$(Q)$(CC) $(BENCH_CFLAGS) $(BENCH_REQ_FLAGS) -o $@ $<

$(BENCH_OUT)/%: bench/workloads/%.cpp | $(BENCH_OUT)/
	$(SAY) CXX $@
	$(Q)$(CXX) -std=c++17 $(BENCH_CXXFLAGS) $(BENCH_REQ_FLAGS) -o $@ $<

$(BENCH_OUT)/spawn: bench/tools/spawn.c | $(BENCH_OUT)/
	$(SAY) CC $@
	$(Q)$(CC) $(BENCH_CFLAGS) -MMD -MP -o $@ $<

$(BENCH_OUT)/startup $(BENCH_OUT)/true: $(BENCH_OUT)/%: bench/tools/%.c | $(BENCH_OUT)/
	$(SAY) CC $@
	$(Q)$(CC) $(BENCH_CFLAGS) -o $@ $<

$(BENCH_OUT)/libempty.so: bench/tools/empty.c | $(BENCH_OUT)/
	$(SAY) CC $@
	$(Q)$(CC) $(BENCH_CFLAGS) -shared -fPIC -o $@ $<

$(BENCH_OUT)/:
	$(Q)mkdir -p $@

# Start-up: a program that returns at once, started 500 times under each
# library (interleaved), against an empty preloaded library.
BENCH_STARTUP_ROUNDS ?= 500
BENCH_LIBDIR := /usr/lib/$(shell $(CC) -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
BENCH_PEER_DIR ?= $(or $(RINGPOOL_PEERS),$(abspath ../shared/peers))
.PHONY: bench-startup
bench-startup: $(BENCH_LIB_DEP) $(BENCH_OUT)/startup $(BENCH_OUT)/true $(BENCH_OUT)/libempty.so
	$(BENCH_OUT)/startup $(BENCH_STARTUP_ROUNDS) $(BENCH_OUT)/true glibc= \
	  empty=$(abspath $(BENCH_OUT))/libempty.so ringpool=$(abspath $(LIB)) \
	  jemalloc=$(BENCH_LIBDIR)/libjemalloc.so.2 mimalloc=$(BENCH_LIBDIR)/libmimalloc.so.2 \
	  tcmalloc=$(BENCH_LIBDIR)/libtcmalloc_minimal.so.4 mimalloc3=$(BENCH_PEER_DIR)/libmimalloc-v3.4.3.so \
	  snmalloc=$(BENCH_PEER_DIR)/libsnmalloc-0.7.5.so rpmalloc=$(BENCH_PEER_DIR)/librpmalloc-2.0.1.so

# More rows of ringpool itself: hardened (RINGPOOL_HARDEN=1), heap
# profiling at the default rate, and a build without statistics counters,
# so that their costs are measured.
BENCH_NOSTATS_LIB := $(BUILD)/nostats/libringpool.so.1
BENCH_ROWS := --extra ringpool-harden=$(LIB):RINGPOOL_HARDEN=1 \
	--extra ringpool-profile=$(LIB):RINGPOOL_PROFILE=$(abspath $(BENCH_OUT))/bench.heap \
	--extra ringpool-nostats=$(BENCH_NOSTATS_LIB)

.PHONY: bench-nostats-lib
bench-nostats-lib:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/nostats \
	  CPPFLAGS="$(CPPFLAGS) -DRINGPOOL_NO_STATS" $(BENCH_NOSTATS_LIB)

bench: $(BENCH_LIB_DEP) $(BENCH_BINS) $(if $(BENCH_LIB_DEP),bench-nostats-lib)
	python3 bench/run.py --lib $(LIB) --bin $(BENCH_OUT) $(if $(BENCH_LIB_DEP),$(BENCH_ROWS)) $(BENCH_ARGS)

bench-quick: $(BENCH_LIB_DEP) $(BENCH_BINS)
	python3 bench/run.py --quick --lib $(LIB) --bin $(BENCH_OUT) $(BENCH_ARGS)

bench-clean:
	rm -rf $(BENCH_OUT)

-include $(BENCH_BINS:=.d)

ifeq ($(BENCH_LIB_DEP),)
.DEFAULT_GOAL := bench-bins
else
.DEFAULT_GOAL := $(BENCH_SAVED_GOAL)
endif
