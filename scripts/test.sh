#!/usr/bin/env bash
# Run the test suites (all of them, or those named), each to the end, then say which failed.
#   scripts/test.sh [unit] [build] [sanity] [lint] [docs] [matrix] [integration] [molecule]
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
# The matrix's lab rebuild runs on the oldest ansible-core only: once per make test is enough.
run_integration() {
  python -m pytest tests/integration -q -p no:cacheprovider -rfE --durations=30 \
    --deselect "$(scripts/matrix.sh --rebuild-test)"
}
run_molecule() {
  local s rc=0
  for s in molecule/*/molecule.yml; do
    s=$(basename "$(dirname "$s")")
    molecule test -s "$s" || rc=1
  done
  return $rc
}

failed=()
for suite in "${suites[@]}"; do
  echo "=== $suite"
  start=$(date +%s)
  if "run_$suite"; then
    echo "=== $suite: ok ($(( $(date +%s) - start ))s)"
  else
    echo "=== $suite: FAILED ($(( $(date +%s) - start ))s)"
    failed+=("$suite")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED suites: ${failed[*]}"
  exit 1
fi
echo "all suites passed: ${suites[*]}"
