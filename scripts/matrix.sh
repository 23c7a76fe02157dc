#!/usr/bin/env bash
# The ansible-core matrix: every ansible-core the collection supports (meta/runtime.yml,
# requires_ansible) that runs on this Python, besides requirements.txt's own, which every
# other suite uses. On each: the unit tests and ansible-test sanity; on the oldest, one lab
# rebuild (the role through ansible-playbook of that core). 2.20 and newer need Python 3.12.
#   scripts/matrix.sh [unit] [sanity] [rebuild]
#   scripts/matrix.sh --rebuild-test    prints the lab test the rebuild part runs (the
#                                       integration suite leaves it to this one)
# Each core has its own venv, .build/venv-core-<version> (sanity's: .build/venv-sanity-<version>).
# Expects the environment the Makefile sets (make matrix).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
CORES=(2.17.14 2.18.19)  # the oldest first; README.md's matrix names the same
STYLE_TESTS=(pylint pep8 yamllint shellcheck changelog)
REBUILD=tests/integration/test_hardened.py::test_source_auto_on_production_shaped_hosts
if [ "${1:-}" = --rebuild-test ]; then echo "$REBUILD"; exit 0; fi
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(unit sanity rebuild)

venv_of() { echo ".build/venv-core-$1"; }

# pytest with $venv's Python, its ansible-* commands first on PATH (the lab's ansible_run
# takes ansible-playbook from beside the Python running the tests).
venv_pytest() { PATH="$PWD/$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"; }

# make test runs the matrix's parts in lanes at once (scripts/test.sh): one of them makes a
# core's venv, the others wait for it (the lock).
make_venv() {
  mkdir -p .build && (flock 9 && install_venv "$1") 9>".build/venv-core-$1.lock"
}

install_venv() {
  local core=$1 venv pins stamp
  venv=$(venv_of "$core")
  # The test tools at the versions the other suites pin, the core at its own.
  pins=$(grep -hE '^(pytest|hypothesis|PyMySQL)==' requirements.txt requirements-test.txt)
  stamp="$venv/.installed-$(echo "ansible-core==$core $pins" | sha256sum | cut -c1-16)"
  [ -e "$stamp" ] && return 0
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv" || return 1
  # shellcheck disable=SC2086
  "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core==$core" $pins \
    2> >(grep -v "^WARNING: Location" >&2) && touch "$stamp"
}

rc=0
for core in "${CORES[@]}"; do
  make_venv "$core" || { echo "matrix: cannot make the venv of ansible-core $core"; rc=1; continue; }
  venv=$(venv_of "$core")
  for part in "${parts[@]}"; do
    case $part in
      unit)
        echo "--- ansible-core $core: unit"
        venv_pytest tests/unit || rc=1 ;;
      sanity)
        echo "--- ansible-core $core: sanity"
        # The tests of our code's style (pylint, three quarters of sanity's time, pep8,
        # yamllint, shellcheck, the changelog's) run on requirements.txt's core only: they
        # check our code, not the core's API, which the others (validate-modules, ansible-doc,
        # import, runtime-metadata...) check on each core. Each skipped one is a venv less.
        SANITY_CORE=$core scripts/sanity.sh "${STYLE_TESTS[@]/#/--skip-test=}" || rc=1 ;;
      rebuild)
        [ "$core" = "${CORES[0]}" ] || continue
        echo "--- ansible-core $core: a lab rebuild ($REBUILD)"
        venv_pytest "$REBUILD" -rfE || rc=1 ;;
      *) echo "matrix: no part $part (unit, sanity, rebuild)"; rc=1 ;;
    esac
  done
done
exit $rc
