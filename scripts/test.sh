#!/usr/bin/env bash
# Run the test suites (all of them, or those named), each to the end, then say which failed.
#   scripts/test.sh [unit] [build] [sanity] [lint] [docs] [matrix] [integration] [molecule]
# Three lanes run at once: two of the suites that need no lab (unit, build, sanity, lint,
# docs, the matrix's unit and sanity parts), and one of the lab's molecule scenarios and the
# matrix's lab rebuild, whose assertions hold on a busy host. Each suite's output is printed
# whole when it ends. Then the lab tests (integration), without the linters beside them:
# two at a time (a lab test leaves about half of this machine's two cores idle, waiting on
# ssh and the servers), then those that bound a latency by themselves.
# Expects the environment the Makefile sets (make test).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(unit build sanity lint docs matrix integration molecule)

run_unit() { python -m pytest tests/unit -q -p no:cacheprovider; }
run_build() {
  ansible-galaxy collection build --force --output-path .build/dist &&
    ansible-builder create -f execution-environment.yml --context .build/ee >/dev/null &&
    echo "execution environment build context: .build/ee"
}
run_sanity() { scripts/sanity.sh; }
run_lint() {
  local rc=0
  ansible-lint --offline || rc=1
  # Changelog fragments (docs/DEVELOPMENT.md): a malformed one fails here, not at the release.
  antsibull-changelog lint || rc=1
  antsibull-changelog lint-changelog-yaml --strict changelogs/changelog.yaml || rc=1
  # Galaxy's import check on the built tarball (scripts/docs.sh, .ci/galaxy-importer.cfg).
  scripts/docs.sh galaxy || rc=1
  return $rc
}
# The docs site (make docs): fails on a broken reference.
run_docs() { scripts/docs.sh site; }
run_matrix() { scripts/matrix.sh; }
run_matrix-unit() { scripts/matrix.sh unit; }
run_matrix-sanity() { scripts/matrix.sh sanity; }
run_matrix-rebuild() { scripts/matrix.sh rebuild; }
# The matrix's lab rebuild runs on the oldest ansible-core only: once per make test is enough.
# Two lab tests at a time (each file on one worker: its shared hosts are made once; the
# lab names hosts of concurrent runs apart), then the few that bound a latency, by
# themselves (marked alone: tests/integration/conftest.py). RESEED_LAB_WORKERS=1 runs one at
# a time.
run_integration() {
  local common=(tests/integration -q -p no:cacheprovider -rfE --durations=0 --durations-min=20
                --deselect "$(scripts/matrix.sh --rebuild-test)") rc=0
  python -m pytest "${common[@]}" -m 'not alone' -n "${RESEED_LAB_WORKERS:-2}" --dist loadfile || rc=1
  python -m pytest "${common[@]}" -m alone || rc=1
  return $rc
}
run_molecule() {
  local s rc=0
  for s in molecule/*/molecule.yml; do
    s=$(basename "$(dirname "$s")")
    molecule test -s "$s" || rc=1
  done
  return $rc
}

# One suite; its verdict to $logs/<suite>.rc. Buffered (in lanes), its output goes to
# $logs/<suite>.log, printed whole under the print lock when it ends (another lane may end
# one at the same moment); live (alone), it is printed as it comes.
logs=.build/test-logs
verdict() {
  if [ "$2" = 0 ]; then echo "=== $1: ok ($(( $(date +%s) - $3 ))s)"
  else echo "=== $1: FAILED ($(( $(date +%s) - $3 ))s)"; fi
}
run_one() {
  local suite=$1 buffered=$2 start rc=0
  start=$(date +%s)
  if [ "$buffered" = buffered ]; then
    "run_$suite" > "$logs/$suite.log" 2>&1 || rc=1
    (flock 8 && echo "=== $suite" && cat "$logs/$suite.log" && verdict "$suite" $rc "$start") \
      8>"$logs/print.lock"
  else
    echo "=== $suite"
    "run_$suite" || rc=1
    verdict "$suite" $rc "$start"
  fi
  echo "$rc" > "$logs/$suite.rc"
}
lane() { local how=$1 suite; shift; for suite in "$@"; do run_one "$suite" "$how"; done; }

# The suites asked, in their lanes. Lane 1 holds sanity: sanity.sh lets one ansible-test
# run at a time (.build/sanity), and those take the longest.
lane1=() lane2=() lane3=() last=() order=()
for suite in "${suites[@]}"; do
  case $suite in
    sanity) lane1+=(sanity); order+=(sanity) ;;
    unit|build|lint|docs) lane2+=("$suite"); order+=("$suite") ;;
    matrix) lane1+=(matrix-sanity); lane2+=(matrix-unit); lane3+=(matrix-rebuild)
            order+=(matrix-unit matrix-sanity matrix-rebuild) ;;
    molecule) lane3=(molecule "${lane3[@]}"); order+=(molecule) ;;
    integration) last+=(integration); order+=(integration) ;;
    *) echo "test.sh: no suite $suite (unit build sanity lint docs matrix integration molecule)"
       exit 2 ;;
  esac
done
rm -rf "$logs" && mkdir -p "$logs" || exit 1
if [ $(( (${#lane1[@]} > 0) + (${#lane2[@]} > 0) + (${#lane3[@]} > 0) )) -gt 1 ]; then
  pids=()
  lane buffered "${lane1[@]}" & pids+=($!)
  lane buffered "${lane2[@]}" & pids+=($!)
  lane buffered "${lane3[@]}" & pids+=($!)
  wait "${pids[@]}"
else  # one lane (make unit, make molecule): nothing to share the cores with
  lane live "${lane1[@]}" "${lane2[@]}" "${lane3[@]}"
fi
lane live "${last[@]}"

failed=()
for suite in "${order[@]}"; do
  [ "$(cat "$logs/$suite.rc" 2>/dev/null)" = 0 ] || failed+=("$suite")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED suites: ${failed[*]}"
  exit 1
fi
echo "all suites passed: ${suites[*]}"
