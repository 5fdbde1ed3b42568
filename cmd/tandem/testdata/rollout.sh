#!/usr/bin/env bash
# A CI job that rolls the demo's two moves from legacy to contracted while
# the fleet goes from release 41 to 44. Every decision comes from tandem's
# exit codes and --json output (read with jq), never from its text:
#   0  go on;  3  not yet: let the fleet catch up and try again;
#   5  someone must act: run the next_command each blocker names;
#   anything else fails the job.
#
# TANDEM is the tandem binary, FLEET the deploy tool ("FLEET roll R" restarts
# every instance at release R; "FLEET sync" lets every instance heartbeat,
# reporting the phases it now acts on), PLAN the plan declaring the moves.
# TANDEM_DB names the database, BACKUPS the directory that keeps the copy
# of it taken before each contract.
set -uo pipefail
: "${TANDEM:?}" "${FLEET:?}" "${PLAN:?}" "${TANDEM_DB:?}" "${BACKUPS:?}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() { echo "rollout: FAIL: $*" >&2; exit 1; }

# step ARGS...: tandem --json ARGS, its exit code returned; 0, 3 and 5 are
# verdicts, anything else fails the job (the JSON error object says why).
step() {
  "$TANDEM" --json "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  case $rc in
  0 | 3 | 5) ;;
  *) cat "$work/err" >&2; fail "tandem $* exited $rc" ;;
  esac
  # With --json, every non-zero exit writes one error object on stderr.
  if [ $rc -ne 0 ]; then
    [ "$(jq -r .exit "$work/err")" = "$rc" ] || fail "tandem $*: no error object for exit $rc"
  fi
  echo "rollout: tandem $* -> $rc"
  return $rc
}

# drive: advance every move whose next gate is open, run the command of
# each blocker that needs someone to act, let the fleet heartbeat; until a
# pass changes nothing (what is left waits for the next release).
drive() {
  local pass name cmd argv progressed
  for pass in $(seq 1 40); do
    progressed=0
    step moves list
    cp "$work/out" "$work/list.json"
    for name in $(jq -r '.moves[] | select(.next_gate != null) | .name' "$work/list.json"); do
      if [ "$(jq -r --arg n "$name" '.moves[] | select(.name == $n) | .next_gate.open' "$work/list.json")" = true ]; then
        if [ "$(jq -r --arg n "$name" '.moves[] | select(.name == $n) | .next_gate.to' "$work/list.json")" = contracted ]; then
          # The contract cannot be undone: a copy of the database first,
          # and --yes, since no one is at a terminal to confirm it.
          step moves advance "$name" --yes --backup "$BACKUPS/$name-before-contract" && progressed=1
        else
          step moves advance "$name" && progressed=1
        fi
        continue
      fi
      jq -r --arg n "$name" '.moves[] | select(.name == $n) | .blockers[] | select(.exit == 5 and .next_command != null) | .next_command' \
        "$work/list.json" | sort -u >"$work/cmds"
      while read -r cmd; do
        # A finalize cannot be undone: --yes, since no one is at a
        # terminal to confirm it.
        case "$cmd" in "tandem moves finalize "*) cmd="$cmd --yes" ;; esac
        read -ra argv <<<"${cmd#tandem }"
        step "${argv[@]}" && progressed=1
      done <"$work/cmds"
    done
    "$FLEET" sync || fail "fleet sync"
    [ $progressed -eq 1 ] || return 0
  done
  fail "the moves never settled"
}

step schema ensure || fail "schema ensure"
step --plan "$PLAN" moves apply || fail "moves apply"
for release in 41 42 43 44; do
  "$FLEET" roll "$release" || fail "fleet roll $release"
  echo "rollout: the fleet runs release $release"
  drive
done

step status || fail "status after the rollout exits $?"
jq -e '.safe and ([.moves[].phase] | length == 2 and all(. == "contracted"))' "$work/out" >/dev/null ||
  fail "the moves are not all contracted: $(jq -c '[.moves[] | {name, phase}]' "$work/out")"
echo "rollout: done: $(jq -c '[.moves[] | {name, phase}]' "$work/out")"
