# tests/profile.mk: the heap profiler's tests, included by the top-level
# Makefile (-include tests/profile.mk).
#
# Targets
#   profile-programs  build tests/profile/* into $(BUILD)/tests/profile/
#   check-profile     run tests/check-profile.sh against $(CLI) and $(LIB)
#
# The programs are built with frame pointers, debug info and -rdynamic, so
# that the tests can check names (and file:line) in profiles and leak
# reports. Uses BUILD, LIB, CLI, CC, CPPFLAGS, CFLAGS, LDFLAGS and Q from the
# including Makefile.

PROFILE_TEST_DIR := $(BUILD)/tests/profile
PROFILE_TEST_PROGS := $(addprefix $(PROFILE_TEST_DIR)/,sites leak dlstress forkclean purger)
PROFILE_TEST_PLUGIN := $(PROFILE_TEST_DIR)/libplugin.so
# Required flags come last so user CFLAGS cannot drop them; -fno-builtin-*:
# the compiler must not drop or merge the allocations the tests count.
PROFILE_TEST_FLAGS := -O1 -g -fno-omit-frame-pointer -pthread -fno-builtin-malloc -fno-builtin-calloc \
  -fno-builtin-realloc -fno-builtin-free

.PHONY: profile-programs check-profile

profile-programs: $(PROFILE_TEST_PROGS) $(PROFILE_TEST_PLUGIN)

$(PROFILE_TEST_PROGS): $(PROFILE_TEST_DIR)/%: tests/profile/%.c
	@mkdir -p $(@D)
	$(SAY) CC $@
	$(Q)$(CC) $(CPPFLAGS) $(PROFILE_TEST_FLAGS) $(CFLAGS) -rdynamic $(LDFLAGS) -o $@ $< -ldl

$(PROFILE_TEST_PLUGIN): tests/profile/plugin.c
	@mkdir -p $(@D)
	$(SAY) CC $@
	$(Q)$(CC) $(CPPFLAGS) $(PROFILE_TEST_FLAGS) $(CFLAGS) -fPIC -shared $(LDFLAGS) -o $@ $<

check-profile: $(LIB) $(CLI) profile-programs
	tests/check-profile.sh $(CLI) $(LIB) $(PROFILE_TEST_DIR)
