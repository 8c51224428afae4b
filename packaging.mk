# packaging.mk: what a distribution needs beyond `make`: the pkg-config file,
# man pages and their install rules, the packaging checks, Debian packages.
# Included by the top-level Makefile (`-include packaging.mk`, after its
# variables); uses VERSION, BUILD, OBJ, CLI, Q and the directory variables
# prefix exec_prefix bindir libdir includedir mandir DESTDIR from there.
#
# Targets
#   pc                  $(BUILD)/ringpool.pc, from ringpool.pc.in
#   install-extra       man pages and ringpool.pc (the Makefile's install
#                       runs it); uninstall-extra removes them
#   check-man           the man pages name every option and command; lint
#   check-version       VERSION, include/ringpool.h, ringpool(3), debian/changelog agree
#   check-debian-symbols  debian/libringpool1.symbols = tests/exported-symbols.txt
#   check-dist          the three above: fast (a second), for `make check`
#   check-install       make install DESTDIR=... then build against it and run it
#   check-reproducible  two builds give identical binaries (four full builds)
#   check-packaging     all of the above
#   update-version      rewrite the version in include/ringpool.h and
#                       man/ringpool.3 from VERSION
#   deb                 Debian packages (dpkg-buildpackage -us -uc -b) built
#                       from a copy of the tree, results in $(BUILD)/deb
#   deb-lint            lintian -E --pedantic and hardening-check on them

# Targets defined here must not become the includer's default goal.
PACKAGING_SAVED_GOAL := $(.DEFAULT_GOAL)

PC := $(BUILD)/ringpool.pc
MAN_PAGES := man/ringpool.1 man/ringpool.3 man/ringpool.7
DEB_DIR := $(BUILD)/deb
DEB_SRC := $(DEB_DIR)/ringpool-$(VERSION)
# The build directory relative to the tree, to leave it out of copies.
PACKAGING_BUILD_REL := $(patsubst $(CURDIR)/%,%,$(abspath $(BUILD)))

.PHONY: pc install-extra uninstall-extra check-man check-version check-debian-symbols \
  check-dist check-install check-reproducible check-packaging update-version deb deb-lint \
  packaging-force

# Files that record the directory variables: rewritten on every run, but
# touched only when their content changes, so that `make && make install
# prefix=/usr` rebuilds what has the directories compiled in.
packaging-force:

# $(call pc_rel,DIR,BASE,NAME): DIR with a leading BASE written as ${NAME},
# so that pkg-config --define-variable=prefix=... relocates the file.
pc_rel = $(if $(filter $(2),$(1)),$${$(3)},$(patsubst $(2)/%,$${$(3)}/%,$(1)))
PC_EXEC_PREFIX = $(call pc_rel,$(exec_prefix),$(prefix),prefix)
PC_LIBDIR = $(call pc_rel,$(call pc_rel,$(libdir),$(exec_prefix),exec_prefix),$(prefix),prefix)
PC_INCLUDEDIR = $(call pc_rel,$(includedir),$(prefix),prefix)

pc: $(PC)
$(PC): ringpool.pc.in VERSION packaging-force
	@mkdir -p $(@D)
	$(Q)sed -e 's|@prefix@|$(prefix)|g' -e 's|@exec_prefix@|$(PC_EXEC_PREFIX)|g' \
	  -e 's|@libdir@|$(PC_LIBDIR)|g' -e 's|@includedir@|$(PC_INCLUDEDIR)|g' \
	  -e 's|@VERSION@|$(VERSION)|g' $< > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# The CLI has $(libdir) compiled in (RINGPOOL_LIBDIR).
$(BUILD)/paths: packaging-force
	@mkdir -p $(@D)
	$(Q)printf 'bindir=%s\nlibdir=%s\n' '$(bindir)' '$(libdir)' > $@.tmp
	$(Q)if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(OBJ)/tools/ringpool.o: $(BUILD)/paths

install-extra: $(PC)
	install -d $(DESTDIR)$(mandir)/man1 $(DESTDIR)$(mandir)/man3 \
	  $(DESTDIR)$(mandir)/man7 $(DESTDIR)$(libdir)/pkgconfig
	install -m 0644 man/ringpool.1 $(DESTDIR)$(mandir)/man1/ringpool.1
	install -m 0644 man/ringpool.3 $(DESTDIR)$(mandir)/man3/ringpool.3
	install -m 0644 man/ringpool.7 $(DESTDIR)$(mandir)/man7/ringpool.7
	install -m 0644 $(PC) $(DESTDIR)$(libdir)/pkgconfig/ringpool.pc

uninstall-extra:
	rm -f $(DESTDIR)$(mandir)/man1/ringpool.1 $(DESTDIR)$(mandir)/man3/ringpool.3 \
	  $(DESTDIR)$(mandir)/man7/ringpool.7 $(DESTDIR)$(libdir)/pkgconfig/ringpool.pc

check-man:
	$(Q)tests/check-man.sh

check-version:
	$(Q)tests/check-version.sh

check-debian-symbols:
	$(Q)tests/check-debian-symbols.sh

check-dist: check-man check-version check-debian-symbols

check-install:
	$(Q)tests/check-install.sh

check-reproducible:
	$(Q)tests/check-reproducible.sh

check-packaging: check-dist check-install check-reproducible

# VERSION is the one place to change; this carries it into the header and
# the man page (debian/changelog gets it from `dch -v VERSION`).
update-version:
	$(Q)set -e; v=$(VERSION); maj=$${v%%.*}; r=$${v#*.}; min=$${r%%.*}; pat=$${r#*.}; \
	for f in include/ringpool.h man/ringpool.3; do \
	  sed -i -e "s/^\(\(\.Fd \)\{0,1\}#define RINGPOOL_VERSION_MAJOR\) .*/\1 $$maj/" \
	    -e "s/^\(\(\.Fd \)\{0,1\}#define RINGPOOL_VERSION_MINOR\) .*/\1 $$min/" \
	    -e "s/^\(\(\.Fd \)\{0,1\}#define RINGPOOL_VERSION_PATCH\) .*/\1 $$pat/" \
	    -e "s/^\(#define RINGPOOL_VERSION_STRING\) .*/\1 \"$$v\"/" \
	    -e "s/^\(\.Fd #define RINGPOOL_VERSION_STRING\) .*/\1 \\\\(dq$$v\\\\(dq/" $$f; \
	done
	$(Q)tests/check-version.sh

# dpkg-buildpackage writes its results into the parent of the source tree
# and its work files into debian/: build from a copy in $(DEB_DIR), so that
# neither the tree nor its parent directory changes.  The copy is what git
# sees (tracked and untracked files, not ignored ones), or without git the
# tree less $(BUILD).  DEB_BUILD_OPTIONS from the environment apply.
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_SRC)
	$(Q)if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git ls-files -z --cached --others --exclude-standard | \
	    xargs -0 sh -c 'for f; do [ -e "$$f" ] && printf "%s\0" "$$f"; done' sh | \
	    tar --null -T - -cf - | tar -C $(DEB_SRC) -xf -; \
	else \
	  tar --exclude=./$(PACKAGING_BUILD_REL) --exclude=./.git -cf - . | tar -C $(DEB_SRC) -xf -; \
	fi
	cd $(DEB_SRC) && dpkg-buildpackage -us -uc -b
	rm -rf $(DEB_SRC)
	@ls -1 $(DEB_DIR)

# relro, bindnow, fortify (and stack protector, PIE) must hold; Debian 12's
# dpkg-buildflags adds neither -fcf-protection nor -fstack-clash-protection,
# so control-flow protection is not asked for (stack clash shows "unknown",
# which passes).
deb-lint:
	lintian -E --pedantic --fail-on error,warning --tag-display-limit 0 $(DEB_DIR)/*.changes
	$(Q)set -e; t=$$(mktemp -d); trap 'rm -rf "$$t"' EXIT; \
	for d in $(DEB_DIR)/libringpool1_*.deb $(DEB_DIR)/ringpool-tools_*.deb; do dpkg-deb -x $$d $$t; done; \
	hardening-check --nocfprotection $$t/usr/lib/*/libringpool.so.1.* $$t/usr/bin/ringpool

.DEFAULT_GOAL := $(PACKAGING_SAVED_GOAL)
