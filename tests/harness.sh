# tests/harness.sh: the one harness of the shell test suites (POSIX sh).
#
#   suite=NAME                (the summary line's name), then
#   . "$(dirname "$0")/harness.sh"          (from a suite in tests/)
#   pass WHAT                 "ok - WHAT"
#   fail WHAT [WHY]           "not ok - WHAT (WHY)"
#   skip WHAT [WHY]           "skip - WHAT (WHY)": a test that cannot run here
#                             (no io_uring, no promtool) is a skip, never a pass
#   check WHAT CONDITION      pass or fail as the shell CONDITION says
#   skip_or_fail WHAT RC      pass if RC is 0, skip if it is 77 (liburing's
#                             convention for "cannot run here"), else fail
#   finish                    "NAME: N passed, M failed, K skipped"; the
#                             suite's exit status (0 when nothing failed)
h_name=${suite:?set suite=NAME before sourcing tests/harness.sh}
passed=0
failed=0
skipped=0
pass() { echo "ok - $1"; passed=$((passed + 1)); }
fail() { echo "not ok - $1${2:+ ($2)}"; failed=$((failed + 1)); }
skip() { echo "skip - $1${2:+ ($2)}"; skipped=$((skipped + 1)); }
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
skip_or_fail() {
  case $2 in
    0) pass "$1" ;;
    77) skip "$1" "cannot run here" ;;
    *) fail "$1" "exit status $2" ;;
  esac
}
finish() {
  echo "$h_name: $passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}
