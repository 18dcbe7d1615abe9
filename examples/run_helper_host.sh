#!/bin/sh
# Runs a helper_host example (C, Swift or Python: they behave alike) end to end:
#   run_helper_host.sh USAGE_EXIT_CODE WORK_DIR COMMAND [ARGS...]
# USAGE_EXIT_CODE is what a malformed option exits with (64 for ArgumentParser
# and gh_cli_parse, 2 for Python's argparse). Checks: -V prints the version;
# a run with -c and --set-target logs the greetings into the printed log file
# and persists the user item in the workspace's config.json; a second run
# restores it; a malformed -c and an invalid default fail, naming the value.
set -u
USAGE=$1
WORK=$2
shift 2
rm -rf "$WORK"
mkdir -p "$WORK/sys" "$WORK/usr"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
FOLDERS="--system $WORK/sys --user $WORK/usr -w $WORK/wks"

v=$("$@" -V) || fail "-V exited $?"
[ "$v" = "1.0.0" ] || fail "-V printed '$v'"

# shellcheck disable=SC2086
log=$("$@" $FOLDERS -c host-greeting=hi --times 2 --set-target all) || fail "first run exited $?: $log"
[ "$log" = "$WORK/wks/logs/helper-host/helper-host.log" ] || fail "printed '$log'"
grep -q "INFO ---------- New helper-host logger instance for process" "$log" || fail "no header line in $log"
grep -q "/helper-host\] INFO hi all (2)" "$log" || fail "no greeting in $log"
grep -q "hi all (2)" "$WORK/wks/logs/root/root.log" || fail "no greeting in the root log"
grep -q '"host-target" *: *"all"' "$WORK/wks/config.json" || fail "host-target not persisted"

# shellcheck disable=SC2086
"$@" $FOLDERS >/dev/null || fail "second run exited $?"
grep -q "INFO hello all (1)" "$log" || fail "persisted target not restored"

# shellcheck disable=SC2086
"$@" $FOLDERS -c bad >"$WORK/out" 2>&1
rc=$?
[ "$rc" = "$USAGE" ] || fail "malformed -c exited $rc, expected $USAGE"
grep -q "bad" "$WORK/out" || fail "malformed -c message does not name it: $(cat "$WORK/out")"

# shellcheck disable=SC2086
"$@" $FOLDERS -c rpc-logs-interval=0 >"$WORK/out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "invalid default exited $rc, expected 1"
grep -q "error 21: .*rpc-logs-interval.*command line" "$WORK/out" || fail "invalid default message: $(cat "$WORK/out")"
echo "helper_host example OK: $*"
