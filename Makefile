# ringpool: a plain Makefile. Honours CC CXX CFLAGS CXXFLAGS CPPFLAGS LDFLAGS
# prefix exec_prefix bindir libdir includedir mandir DESTDIR; the flags the
# library needs live in their own variables so user flags cannot drop them,
# and the user's come after them, so that `make CXXFLAGS=-O0` means it.

VERSION := $(shell cat VERSION)
MAJOR := $(firstword $(subst ., ,$(VERSION)))

CC ?= cc
CXX ?= c++
CFLAGS ?= -O2 -g
CXXFLAGS ?= -O2 -g
CPPFLAGS ?=
LDFLAGS ?=

prefix ?= /usr/local
exec_prefix ?= $(prefix)
bindir ?= $(exec_prefix)/bin
libdir ?= $(exec_prefix)/lib
includedir ?= $(prefix)/include
mandir ?= $(prefix)/share/man
DESTDIR ?=

BUILD ?= build
OBJ := $(BUILD)/obj

# One quiet-build scheme for this file and every .mk it includes: $(Q)
# before a command hides it, $(SAY) WHAT FILE says it in one line; V=1
# shows the commands instead.
Q := $(if $(filter 1,$(V)),,@)
SAY = $(if $(filter 1,$(V)),@true,@printf '  %-7s %s\n')

# What the library needs, whatever the user passes.
LIB_CXXFLAGS := -std=c++20 -fPIC -fno-exceptions -fno-rtti -fvisibility=hidden \
  -fvisibility-inlines-hidden -ftls-model=initial-exec -fno-builtin-malloc \
  -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc -fasynchronous-unwind-tables \
  -Wall -Wextra -Wno-missing-field-initializers -MMD -MP -ffile-prefix-map=$(CURDIR)=.
# make DEBUG=1: the debug-only checks too (pool/errors.hpp).
LIB_CPPFLAGS := -DRINGPOOL_VERSION=\"$(VERSION)\" $(if $(filter 1,$(DEBUG)),-DRINGPOOL_DEBUG)
LIB_LDFLAGS := -shared -Wl,-soname,libringpool.so.$(MAJOR) -Wl,-z,defs \
  -Wl,--version-script=preload/ringpool.map
LIB_LIBS := -ldl -lpthread

TOOL_CXXFLAGS := -std=c++20 -Wall -Wextra -MMD -MP -ffile-prefix-map=$(CURDIR)=.
# The CLI finds the library at $(libdir), or at the same place relative to
# itself (a DESTDIR or relocated install): bindir/../lib/<triplet>, say.
TOOL_CPPFLAGS := -DRINGPOOL_VERSION=\"$(VERSION)\" -DRINGPOOL_LIBDIR=\"$(libdir)\" \
  -DRINGPOOL_LIBDIR_REL=\"$(shell realpath -m --relative-to=$(bindir) $(libdir))\"

TEST_CXXFLAGS := -std=c++20 -Wall -Wextra -Wno-missing-field-initializers -MMD -MP -pthread
TEST_CPPFLAGS := -I/usr/include

POOL_SRC := $(wildcard pool/*.cpp)
PRELOAD_SRC := $(wildcard preload/*.cpp)
PROFILER_SRC := $(wildcard profiler/*.cpp)
POOL_OBJ := $(POOL_SRC:%.cpp=$(OBJ)/%.o)
PRELOAD_OBJ := $(PRELOAD_SRC:%.cpp=$(OBJ)/%.o)
PROFILER_OBJ := $(PROFILER_SRC:%.cpp=$(OBJ)/%.o)
# The io_uring socket shim: SHIM_OBJ, check-shim, bench-uring.
include uring_shim/shim.mk
LIB_OBJ := $(POOL_OBJ) $(PRELOAD_OBJ) $(PROFILER_OBJ) $(SHIM_OBJ)

LIB_REAL := $(BUILD)/libringpool.so.$(VERSION)
LIB := $(BUILD)/libringpool.so.$(MAJOR)
LIB_DEV := $(BUILD)/libringpool.so
CLI := $(BUILD)/ringpool

UNIT_SRC := $(wildcard tests/unit/*.cpp)
UNIT_OBJ := $(UNIT_SRC:%.cpp=$(OBJ)/%.o)
UNIT_BIN := $(BUILD)/tests/unit

.PHONY: all check check-unit check-symbols check-stats check-hostile clean demo install uninstall
all: $(LIB) $(LIB_DEV) $(CLI)

$(POOL_OBJ) $(PRELOAD_OBJ) $(PROFILER_OBJ): $(OBJ)/%.o: %.cpp
	@mkdir -p $(@D)
	$(SAY) CXX $<
	$(Q)$(CXX) $(LIB_CPPFLAGS) $(CPPFLAGS) $(LIB_CXXFLAGS) $(CXXFLAGS) -c $< -o $@

# Linked with the C driver: the library must not pull in libstdc++.
$(LIB_REAL): $(LIB_OBJ) preload/ringpool.map
	$(SAY) LINK $@
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) $(LIB_LDFLAGS) -o $@ $(LIB_OBJ) $(LIB_LIBS)

$(LIB): $(LIB_REAL)
	$(Q)ln -sf $(notdir $<) $@

$(LIB_DEV): $(LIB)
	$(Q)ln -sf $(notdir $<) $@

$(OBJ)/tools/%.o: tools/%.cpp
	@mkdir -p $(@D)
	$(SAY) CXX $<
	$(Q)$(CXX) $(TOOL_CPPFLAGS) $(CPPFLAGS) $(TOOL_CXXFLAGS) $(CXXFLAGS) -c $< -o $@

TOOL_SRC := $(wildcard tools/*.cpp)
TOOL_OBJ := $(TOOL_SRC:%.cpp=$(OBJ)/%.o)
# The CLI shares the snapshot and formatting code with the library.
TOOL_POOL_OBJ := $(OBJ)/pool/stats_view.o
$(CLI): $(TOOL_OBJ) $(TOOL_POOL_OBJ)
	$(SAY) LINK $@
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $^

# Unit tests link the pool objects directly (no preloading).
$(OBJ)/tests/unit/%.o: tests/unit/%.cpp
	@mkdir -p $(@D)
	$(SAY) CXX $<
	$(Q)$(CXX) $(TEST_CPPFLAGS) $(CPPFLAGS) $(TEST_CXXFLAGS) $(CXXFLAGS) -c $< -o $@

$(UNIT_BIN): $(UNIT_OBJ) $(POOL_OBJ)
	@mkdir -p $(@D)
	$(SAY) LINK $@
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) -pthread -o $@ $^ -ldl

check-unit: $(UNIT_BIN)
	$(UNIT_BIN)

# The exported set is exactly the list in tests/exported-symbols.txt, and
# the library needs no libstdc++.
check-symbols: $(LIB)
	$(Q)tests/check-symbols.sh $(LIB)

include tests/preload.mk
include tests/profile.mk
include tests/reliability.mk
include bench/bench.mk
include packaging.mk

check-stats: all $(BUILD)/tests/stats_target $(BUILD)/tests/observe
	tests/check-stats.sh $(CLI) $(LIB) $(BUILD)/tests/stats_target $(BUILD)/tests/observe

HOSTILE_BIN := $(BUILD)/tests/hostile
HOSTILE_PROGS := $(HOSTILE_BIN)/deepbind $(HOSTILE_BIN)/usebefore $(HOSTILE_BIN)/badfree $(HOSTILE_BIN)/seccomp
HOSTILE_LIBS := $(HOSTILE_BIN)/libdeep.so $(HOSTILE_BIN)/libearly.so
HOSTILE_CFLAGS := -O2 -g -pthread -fno-builtin-malloc -fno-builtin-free -fno-builtin-realloc
$(HOSTILE_BIN)/lib%.so: tests/hostile/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(HOSTILE_CFLAGS) $(CFLAGS) -fPIC -shared -o $@ $< -ldl
$(HOSTILE_BIN)/%: tests/hostile/%.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(HOSTILE_CFLAGS) $(CFLAGS) -o $@ $< -ldl

check-hostile: all $(HOSTILE_PROGS) $(HOSTILE_LIBS)
	tests/check-hostile.sh $(LIB) $(HOSTILE_BIN)

check: all check-symbols check-unit check-preload check-stats check-hostile check-dist check-install check-profile check-shim check-reliability check-fuzz-regress
	@echo "make check: all suites passed"

demo:
	$(Q)tests/demo.sh

clean:
	rm -rf $(BUILD)

install: all install-extra
	install -d $(DESTDIR)$(libdir) $(DESTDIR)$(bindir) $(DESTDIR)$(includedir)
	install -m 0644 $(LIB_REAL) $(DESTDIR)$(libdir)/
	ln -sf $(notdir $(LIB_REAL)) $(DESTDIR)$(libdir)/libringpool.so.$(MAJOR)
	ln -sf libringpool.so.$(MAJOR) $(DESTDIR)$(libdir)/libringpool.so
	install -m 0755 $(CLI) $(DESTDIR)$(bindir)/ringpool
	install -m 0644 include/ringpool.h $(DESTDIR)$(includedir)/

uninstall: uninstall-extra
	rm -f $(DESTDIR)$(libdir)/$(notdir $(LIB_REAL)) $(DESTDIR)$(libdir)/libringpool.so.$(MAJOR) \
	  $(DESTDIR)$(libdir)/libringpool.so $(DESTDIR)$(bindir)/ringpool $(DESTDIR)$(includedir)/ringpool.h

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)
