# uring_shim/shim.mk: the io_uring socket shim, its tests and its
# benchmark. Included by the top-level Makefile (`-include uring_shim/shim.mk`)
# before LIB_OBJ is set, so that the library can link $(SHIM_OBJ).
#
# Variables
#   SHIM_SRC, SHIM_OBJ  the shim's sources and objects; the objects are built
#                       with the library's flags (LIB_CPPFLAGS, LIB_CXXFLAGS)
#                       and belong in LIB_OBJ.
# Targets
#   shim-tests   build tests/shim/* into $(BUILD)/tests/shim/
#   check-shim   run tests/shim/run.sh against $(LIB): every test plain and
#                with RINGPOOL_URING=1, compared
#   bench-uring  bench/uring: ping-pong and echo server, plain vs routed
#   bench-uring-ceiling  the same with a minimal io_uring preload in place
#                of the shim: what io_uring itself costs
#
# Uses BUILD, OBJ, LIB, CC, CXX, CPPFLAGS, CFLAGS, CXXFLAGS, LDFLAGS, Q and SAY from
# the including Makefile. Prerequisites that name $(LIB) are expanded late
# (secondary expansion), so this file may be included anywhere.

SHIM_SAVED_GOAL := $(.DEFAULT_GOAL)

BUILD ?= build
OBJ ?= $(BUILD)/obj

SHIM_SRC := $(wildcard uring_shim/*.cpp)
SHIM_OBJ := $(SHIM_SRC:%.cpp=$(OBJ)/%.o)


$(OBJ)/uring_shim/%.o: uring_shim/%.cpp
	@mkdir -p $(@D)
	$(SAY) CXX $<
	$(Q)$(CXX) $(LIB_CPPFLAGS) $(CPPFLAGS) $(LIB_CXXFLAGS) $(CXXFLAGS) -c $< -o $@

# Test programs: C, no allocator of their own, real sockets on loopback.
SHIM_TEST_DIR := $(BUILD)/tests/shim
SHIM_TEST_SRC := $(wildcard tests/shim/*.c)
SHIM_TEST_BINS := $(patsubst tests/shim/%.c,$(SHIM_TEST_DIR)/%,$(SHIM_TEST_SRC))
SHIM_TEST_FLAGS := -O2 -g -pthread -Wall -Wextra -MMD -MP

# The _chk entry points are what fortified programs call.
$(SHIM_TEST_DIR)/fortify: SHIM_TEST_EXTRA := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=2
# siginterrupt and sigset are deprecated, and what the handlers test checks.
$(SHIM_TEST_DIR)/handlers: SHIM_TEST_EXTRA := -Wno-deprecated-declarations

$(SHIM_TEST_BINS): $(SHIM_TEST_DIR)/%: tests/shim/%.c tests/shim/shim_test.h
	@mkdir -p $(@D)
	$(SAY) CC $@
	$(Q)$(CC) $(CPPFLAGS) $(SHIM_TEST_FLAGS) $(SHIM_TEST_EXTRA) $(CFLAGS) $(LDFLAGS) -o $@ $< -ldl

# Benchmark programs.
SHIM_BENCH_DIR := $(BUILD)/bench/uring
SHIM_BENCH_SRC := $(wildcard bench/uring/*.c)
SHIM_BENCH_BINS := $(patsubst bench/uring/%.c,$(SHIM_BENCH_DIR)/%,$(SHIM_BENCH_SRC))

$(SHIM_BENCH_BINS): $(SHIM_BENCH_DIR)/%: bench/uring/%.c
	@mkdir -p $(@D)
	$(SAY) CC $@
	$(Q)$(CC) $(CPPFLAGS) -O2 -g -pthread -Wall -Wextra $(LDFLAGS) -o $@ $<

# io_uring's own cost, without the shim (bench/uring/ceiling/ceiling.c).
SHIM_CEILING := $(SHIM_BENCH_DIR)/libceiling.so
$(SHIM_CEILING): bench/uring/ceiling/ceiling.c
	@mkdir -p $(@D)
	$(SAY) CC $@
	$(Q)$(CC) $(CPPFLAGS) -O2 -g -fPIC -shared -Wall -Wextra $(LDFLAGS) -o $@ $< -luring

.PHONY: shim-tests check-shim bench-uring bench-uring-ceiling
.SECONDEXPANSION:

shim-tests: $(SHIM_TEST_BINS)

check-shim: $$(LIB) $$(CLI) $(SHIM_TEST_BINS)
	tests/shim/run.sh $(LIB) $(SHIM_TEST_DIR)

# BENCH_URING_ARGS: e.g. '--reps 5 --iters 50000'.
BENCH_URING_ARGS ?=
bench-uring: $$(LIB) $(SHIM_BENCH_BINS)
	bench/uring/run.sh $(LIB) $(SHIM_BENCH_DIR) $(BENCH_URING_ARGS)

bench-uring-ceiling: $$(LIB) $(SHIM_BENCH_BINS) $(SHIM_CEILING)
	bench/uring/run.sh $(LIB) $(SHIM_BENCH_DIR) --routed-preload $(SHIM_CEILING) $(BENCH_URING_ARGS)

-include $(SHIM_OBJ:.o=.d) $(SHIM_TEST_BINS:=.d)

# Targets defined here must not become the includer's default goal.
ifneq ($(SHIM_SAVED_GOAL),)
.DEFAULT_GOAL := $(SHIM_SAVED_GOAL)
else
.DEFAULT_GOAL :=
endif
