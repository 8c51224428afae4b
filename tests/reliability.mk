# tests/reliability.mk: sanitizers, fuzzing, fault injection and the other
# checks of reliability and security under fire. Included by the
# top-level Makefile (-include tests/reliability.mk), after POOL_SRC,
# UNIT_SRC, LIB and CLI are set.
#
# Targets
#   check-sanitize      the unit tests of pool/ (linked directly) under
#                       AddressSanitizer+UBSan, then ThreadSanitizer
#   fuzz                each libFuzzer target for FUZZ_SECONDS (clang), from
#                       the corpus kept in tests/fuzz/corpus/TARGET/;
#                       crashes are moved to tests/fuzz/regress/TARGET/
#   fuzz-merge          add the new coverage of the last run to that corpus
#   check-fuzz-regress  replay tests/fuzz/{regress,seeds,corpus}/ under
#                       ASan+UBSan (gcc is enough: a small driver stands in
#                       for libFuzzer)
#   check-reliability   faults, ulimit -v, signals, fork and thread churn,
#                       the stats channel's security, the fuzz regressions;
#                       "ok"/"not ok"/"skip" lines and one summary line
#
# Glossary
#   variant   asan (address,undefined) or tsan (thread): objects of each
#             live under $(BUILD)/sanitize/VARIANT/, mirroring the sources.
#   replay    a fuzz target linked with tests/fuzz/replay_main.cpp instead of
#             libFuzzer: it runs the inputs named on its command line once.
#
# Uses BUILD, LIB, CLI, POOL_SRC, UNIT_SRC, LIB_CPPFLAGS, TEST_CPPFLAGS, CC,
# CXX, CPPFLAGS, CXXFLAGS, CFLAGS, LDFLAGS, Q and SAY from the including Makefile.

BUILD ?= build
LIB ?= $(BUILD)/libringpool.so.1
CLI ?= $(BUILD)/ringpool


# ---- sanitizers -------------------------------------------------------------

SAN_DIR := $(BUILD)/sanitize
# Required flags come last so that user flags cannot drop them. The pool
# sources get the library's defines; -O1 keeps the reports readable.
SAN_CXXFLAGS := -std=c++20 -g -O1 -fno-omit-frame-pointer -pthread -ftls-model=initial-exec \
  -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc -fno-builtin-realloc \
  -Wall -Wextra -Wno-missing-field-initializers -Wno-maybe-uninitialized -MMD -MP
SAN_CPPFLAGS := $(LIB_CPPFLAGS) $(TEST_CPPFLAGS) -DRINGPOOL_DEBUG
SAN_FLAGS_asan := -fsanitize=address,undefined -fno-sanitize-recover=undefined
SAN_FLAGS_tsan := -fsanitize=thread -Wno-tsan
# halt_on_error: the first report fails the run; the suppressions file says
# why each entry is there. die_after_fork=0: the pool's purge thread may be
# alive when a test forks a child to watch it abort, and TSan would
# otherwise kill any child of a multi-threaded parent that starts a thread.
SAN_ENV_asan := ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
SAN_ENV_tsan := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:die_after_fork=0:suppressions=$(CURDIR)/tests/sanitize/tsan.supp

SAN_POOL_asan := $(POOL_SRC:%.cpp=$(SAN_DIR)/asan/%.o)
SAN_POOL_tsan := $(POOL_SRC:%.cpp=$(SAN_DIR)/tsan/%.o)
SAN_UNIT_asan := $(UNIT_SRC:%.cpp=$(SAN_DIR)/asan/%.o)
SAN_UNIT_tsan := $(UNIT_SRC:%.cpp=$(SAN_DIR)/tsan/%.o)

$(SAN_DIR)/asan/%.o: %.cpp
	$(SAY) CXX $@
	@mkdir -p $(@D)
	$(Q)$(CXX) $(SAN_CPPFLAGS) $(CPPFLAGS) $(SAN_CXXFLAGS) $(SAN_FLAGS_asan) $(CXXFLAGS) -c $< -o $@

$(SAN_DIR)/tsan/%.o: %.cpp
	$(SAY) CXX $@
	@mkdir -p $(@D)
	$(Q)$(CXX) $(SAN_CPPFLAGS) $(CPPFLAGS) $(SAN_CXXFLAGS) $(SAN_FLAGS_tsan) $(CXXFLAGS) -c $< -o $@

$(SAN_DIR)/unit-asan: $(SAN_UNIT_asan) $(SAN_POOL_asan)
	$(SAY) LINK $@
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $(SAN_FLAGS_asan) -pthread -o $@ $^ -ldl

$(SAN_DIR)/unit-tsan: $(SAN_UNIT_tsan) $(SAN_POOL_tsan)
	$(SAY) LINK $@
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $(SAN_FLAGS_tsan) -pthread -o $@ $^ -ldl

# The statistics read while threads allocate (the races tsan.supp names).
$(SAN_DIR)/stats_race-%: $(SAN_DIR)/%/tests/sanitize/stats_race.o $(SAN_POOL_asan) $(SAN_POOL_tsan)
	$(SAY) LINK $@
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $(SAN_FLAGS_$*) -pthread -o $@ $< $(SAN_POOL_$*) -ldl

.PHONY: check-sanitize check-sanitize-asan check-sanitize-tsan

check-sanitize: check-sanitize-asan check-sanitize-tsan

# --order decl: in a random order, "a huge block freed and allocated again
# reuses the mapping" fails (other tests leave cached mappings behind).
check-sanitize-asan: $(SAN_DIR)/unit-asan $(SAN_DIR)/stats_race-asan
	$(SAN_ENV_asan) timeout -k 10 900 $(SAN_DIR)/unit-asan --order decl
	$(SAN_ENV_asan) timeout -k 10 300 $(SAN_DIR)/stats_race-asan

check-sanitize-tsan: $(SAN_DIR)/unit-tsan $(SAN_DIR)/stats_race-tsan
	$(SAN_ENV_tsan) timeout -k 10 1800 $(SAN_DIR)/unit-tsan --order decl
	$(SAN_ENV_tsan) timeout -k 10 600 $(SAN_DIR)/stats_race-tsan

# ---- fuzzing ------------------------------------------------------------------

FUZZ_TARGETS := fuzz_pool fuzz_stats_reader
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60
# Extra libFuzzer flags, e.g. FUZZ_FLAGS=-jobs=2 or -max_len=8192.
FUZZ_FLAGS ?=
# clang with libFuzzer; empty when none is installed (fuzz says so).
FUZZ_CXX ?= $(firstword $(shell command -v clang++-14 clang++ 2>/dev/null))
FUZZ_CXXFLAGS := -std=c++20 -g -O1 -fno-omit-frame-pointer -pthread -ftls-model=initial-exec \
  -Wall -Wextra -Wno-missing-field-initializers -MMD -MP
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined

# The pool is instrumented for coverage too, so that libFuzzer is guided by
# the allocator's branches, not only the harness's.
$(FUZZ_DIR)/obj/%.o: %.cpp
	$(SAY) FUZZCXX $@
	@mkdir -p $(@D)
	$(Q)$(FUZZ_CXX) $(SAN_CPPFLAGS) $(CPPFLAGS) $(FUZZ_CXXFLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@

FUZZ_POOL_OBJ := $(POOL_SRC:%.cpp=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)
# Objects reached through pattern rules only: keep them between runs.
.SECONDARY: $(SAN_DIR)/asan/tests/sanitize/stats_race.o $(SAN_DIR)/tsan/tests/sanitize/stats_race.o $(FUZZ_POOL_OBJ) $(FUZZ_TARGETS:%=$(FUZZ_DIR)/obj/tests/fuzz/%.o) \
  $(FUZZ_TARGETS:%=$(SAN_DIR)/asan/tests/fuzz/%.o) $(SAN_DIR)/asan/tests/fuzz/replay_main.o

$(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_POOL_OBJ)
	$(SAY) LINK $@
	$(Q)$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer -pthread -o $@ $^ -ldl

.PHONY: fuzz fuzz-build fuzz-merge
ifeq ($(FUZZ_CXX),)
fuzz fuzz-build fuzz-merge:
	@echo "fuzz: no clang++ found (Debian: apt-get install clang), or set FUZZ_CXX"; exit 1
else
fuzz-build: $(FUZZ_BINS)

# Each target runs FUZZ_SECONDS from its corpus (seeded with the regression
# inputs and seeds); whatever libFuzzer saves as crash-/leak-/timeout- moves to
# tests/fuzz/regress/TARGET/, so that check-fuzz-regress replays it from now on.
fuzz: fuzz-build
	@set -e; found=; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts/$$t tests/fuzz/regress/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -timeout=30 \
	    -rss_limit_mb=4096 -max_len=4096 -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ $(FUZZ_FLAGS) \
	    $(FUZZ_DIR)/corpus/$$t tests/fuzz/regress/$$t $$(for d in tests/fuzz/seeds/$$t tests/fuzz/corpus/$$t; do [ -d $$d ] && echo $$d; done) 2>&1 | tee $(FUZZ_DIR)/$$t.log \
	    | grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)' || true; \
	  for a in $(FUZZ_DIR)/artifacts/$$t/*; do \
	    [ -f "$$a" ] || continue; \
	    mv "$$a" tests/fuzz/regress/$$t/; echo "fuzz: $$t: NEW FINDING $${a##*/} -> tests/fuzz/regress/$$t/"; found=1; \
	  done; \
	done; \
	if [ -n "$$found" ]; then echo "fuzz: findings above; see $(FUZZ_DIR)/*.log"; exit 1; fi; \
	echo "fuzz: no crashes"

# Adds to tests/fuzz/corpus/TARGET the inputs of the last `make fuzz` that
# reach coverage it lacks (libFuzzer -merge=1): the corpus kept in the tree,
# which the next `make fuzz` starts from and check-fuzz-regress replays.
fuzz-merge: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p tests/fuzz/corpus/$$t $(FUZZ_DIR)/corpus/$$t; \
	  before=$$(ls tests/fuzz/corpus/$$t | wc -l); \
	  $(FUZZ_DIR)/$$t -merge=1 tests/fuzz/corpus/$$t $(FUZZ_DIR)/corpus/$$t > $(FUZZ_DIR)/$$t.merge.log 2>&1; \
	  echo "fuzz-merge: $$t: $$before -> $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; \
	done
endif

# Replay: the same harnesses, built with $(CXX) and ASan+UBSan, fed the
# regression inputs once each. Shares the pool objects of check-sanitize.
REPLAY_BINS := $(FUZZ_TARGETS:%=$(SAN_DIR)/replay_%)

$(SAN_DIR)/replay_%: $(SAN_DIR)/asan/tests/fuzz/%.o $(SAN_DIR)/asan/tests/fuzz/replay_main.o $(SAN_POOL_asan)
	$(SAY) LINK $@
	$(Q)$(CXX) $(CXXFLAGS) $(LDFLAGS) $(SAN_FLAGS_asan) -pthread -o $@ $^ -ldl

.PHONY: check-fuzz-regress
check-fuzz-regress: $(REPLAY_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  dirs=""; for d in tests/fuzz/regress/$$t tests/fuzz/seeds/$$t tests/fuzz/corpus/$$t; do [ -d $$d ] && dirs="$$dirs $$d"; done; \
	  if $(SAN_ENV_asan) timeout -k 5 300 $(SAN_DIR)/replay_$$t $$dirs > $(SAN_DIR)/replay_$$t.log 2>&1; then \
	    echo "ok - fuzz regressions replay cleanly: $$t ($$(tail -n 1 $(SAN_DIR)/replay_$$t.log))"; \
	  else \
	    echo "not ok - fuzz regressions: $$t (see $(SAN_DIR)/replay_$$t.log)"; tail -n 20 $(SAN_DIR)/replay_$$t.log; exit 1; \
	  fi; \
	done

# ---- the reliability suite ----------------------------------------------------

REL_SRCDIR := tests/reliability
REL_DIR := $(BUILD)/tests/reliability
REL_FLAGS := -O2 -g -pthread -Wall -Wextra -MMD -MP -fno-builtin-malloc -fno-builtin-calloc \
  -fno-builtin-realloc -fno-builtin-free
REL_C := $(wildcard $(REL_SRCDIR)/*.c)
REL_CXX := $(wildcard $(REL_SRCDIR)/*.cpp)
REL_BINS := $(REL_C:$(REL_SRCDIR)/%.c=$(REL_DIR)/%) $(REL_CXX:$(REL_SRCDIR)/%.cpp=$(REL_DIR)/%)

$(REL_DIR)/%: $(REL_SRCDIR)/%.c tests/programs/testutil.h
	$(SAY) CC $@
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(REL_FLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -ldl

$(REL_DIR)/%: $(REL_SRCDIR)/%.cpp tests/programs/testutil.h
	$(SAY) CXX $@
	@mkdir -p $(@D)
	$(Q)$(CXX) $(CPPFLAGS) $(REL_FLAGS) -std=c++20 $(CXXFLAGS) $(LDFLAGS) -o $@ $< -ldl

.PHONY: reliability-programs check-reliability
reliability-programs: $(REL_BINS)

# The fork and thread programs of tests/programs/ run here too, under the
# same timeouts (preload.mk builds them).
check-reliability: $(LIB) $(CLI) $(REL_BINS) $(REPLAY_BINS) \
    $(BUILD)/tests/fork_threads $(BUILD)/tests/many_threads $(BUILD)/tests/stats_target
	$(SAN_ENV_asan) tests/reliability/run.sh $(LIB) $(CLI) $(REL_DIR) $(BUILD)/tests $(SAN_DIR)

-include $(wildcard $(REL_DIR)/*.d $(SAN_DIR)/*/pool/*.d $(SAN_DIR)/*/tests/*/*.d $(FUZZ_DIR)/obj/*/*.d $(FUZZ_DIR)/obj/tests/*/*.d)
