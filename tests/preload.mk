# tests/preload.mk: the preload tests, included by the top-level Makefile.
#
# Real programs, and the test programs of tests/programs/, run with the
# library in LD_PRELOAD.  The test programs link no allocator: they test
# whatever malloc the process gets.
#
# Targets
#   preload-programs  build tests/programs/* into $(BUILD)/tests/
#   check-preload     run tests/preload/run.sh against $(LIB)
#   stress            the long stress run under $(LIB)
#
# Uses BUILD, LIB, CC, CXX, CPPFLAGS, CFLAGS, CXXFLAGS, LDFLAGS, Q and SAY from the
# including Makefile, with the defaults below when it sets none.

BUILD ?= build
LIB ?= $(BUILD)/libringpool.so.1

# Required flags stay here so that a user's CFLAGS cannot drop them.
# -fno-builtin-*: the programs test the allocator's answers, so the compiler
# must not fold or drop malloc/free pairs it can see through.
PRELOAD_TEST_FLAGS := -O2 -g -pthread -Wall -Wextra -MMD -MP \
    -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free
PRELOAD_TEST_CXXFLAGS := -std=c++17
PRELOAD_TEST_LDLIBS := -ldl

PRELOAD_TEST_SRCDIR := tests/programs
PRELOAD_TEST_DIR := $(BUILD)/tests
PRELOAD_TEST_C := $(wildcard $(PRELOAD_TEST_SRCDIR)/*.c)
PRELOAD_TEST_CXX := $(wildcard $(PRELOAD_TEST_SRCDIR)/*.cpp)
PRELOAD_TEST_C_BINS := $(patsubst $(PRELOAD_TEST_SRCDIR)/%.c,$(PRELOAD_TEST_DIR)/%,$(PRELOAD_TEST_C))
PRELOAD_TEST_CXX_BINS := $(patsubst $(PRELOAD_TEST_SRCDIR)/%.cpp,$(PRELOAD_TEST_DIR)/%,$(PRELOAD_TEST_CXX))
PRELOAD_TEST_BINS := $(PRELOAD_TEST_C_BINS) $(PRELOAD_TEST_CXX_BINS)

# Stress sizes for `make stress`; override on the command line.
STRESS_THREADS ?= 8
STRESS_OPS ?= 1000000
STRESS_ROUNDS ?= 10

.PHONY: preload-programs check-preload stress

preload-programs: $(PRELOAD_TEST_BINS)

$(PRELOAD_TEST_C_BINS): $(PRELOAD_TEST_DIR)/%: $(PRELOAD_TEST_SRCDIR)/%.c
	$(SAY) CC $@
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(PRELOAD_TEST_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(PRELOAD_TEST_LDLIBS)

$(PRELOAD_TEST_CXX_BINS): $(PRELOAD_TEST_DIR)/%: $(PRELOAD_TEST_SRCDIR)/%.cpp
	$(SAY) CXX $@
	$(Q)mkdir -p $(@D)
	$(Q)$(CXX) $(CPPFLAGS) $(PRELOAD_TEST_FLAGS) $(PRELOAD_TEST_CXXFLAGS) $(CXXFLAGS) $(LDFLAGS) -o $@ $< $(PRELOAD_TEST_LDLIBS)

check-preload: $(LIB) $(PRELOAD_TEST_BINS)
	tests/preload/run.sh $(LIB) $(PRELOAD_TEST_DIR)

stress: $(LIB) $(PRELOAD_TEST_DIR)/stress
	LD_PRELOAD=$(abspath $(LIB)) timeout 3600 $(PRELOAD_TEST_DIR)/stress long $(STRESS_THREADS) $(STRESS_OPS) $(STRESS_ROUNDS)

-include $(PRELOAD_TEST_BINS:=.d)
