#!/usr/bin/env bash
# Install what the demo and the tests need, idempotently, on Debian 12 as root:
#   scripts/install-deps.sh        Debian packages (bindep.txt) and .venv with requirements.txt
#   scripts/install-deps.sh test   ... plus requirements-test.txt
#   scripts/install-deps.sh bench  ... plus what bench/ needs (mydumper, bench/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: run as root (it installs Debian packages and the lab needs namespaces)" >&2
  exit 1
fi

# Every Debian line of bindep.txt (platform:dpkg, or no platform at all).
packages=$(sed -e 's/#.*//' -e '/^\s*$/d' bindep.txt | grep -E 'platform:dpkg|^[^[]*$' | awk '{print $1}')
# The benchmark's logical baseline (mydumper/myloader) is no dependency of the collection.
[ "${1:-}" = bench ] && packages="$packages mydumper"
missing=()
for pkg in $packages; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  # Package scripts would start the machine's own MariaDB and sshd; the lab runs its own
  # inside namespaces, so keep the machine's stopped while installing.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
reqs=(requirements.txt)
[ "${1:-}" = test ] && reqs+=(requirements-test.txt)
[ "${1:-}" = bench ] && reqs+=(bench/requirements.txt)
stamp=".venv/.installed-$(cat "${reqs[@]}" | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ]; then
  args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  # (this machine's pip config may list index folders that do not exist: not our concern)
  .venv/bin/pip install -q --disable-pip-version-check "${args[@]}" 2> >(grep -v "^WARNING: Location" >&2)
  touch "$stamp"
fi
# galaxy-importer, in its own venv (requirements-galaxy-importer.txt says why), with the
# ansible-core and ansible-lint that .venv has.
if [ "${1:-}" = test ]; then
  gi=.build/venv-galaxy-importer
  gi_pins=$(grep -hE '^(ansible-core|ansible-lint)==' requirements.txt requirements-test.txt)
  gi_stamp="$gi/.installed-$(echo "$gi_pins" | cat - requirements-galaxy-importer.txt | sha256sum | cut -c1-16)"
  if [ ! -e "$gi_stamp" ]; then
    [ -x "$gi/bin/python" ] || "$python" -m venv "$gi"
    # shellcheck disable=SC2086
    "$gi/bin/pip" install -q --disable-pip-version-check -r requirements-galaxy-importer.txt $gi_pins \
      2> >(grep -v "^WARNING: Location" >&2)
    touch "$gi_stamp"
  fi
fi
# Ansible finds the collection through .build/ansible_collections/reseed/mariadb -> the repo.
mkdir -p .build/ansible_collections/reseed
[ "$(readlink .build/ansible_collections/reseed/mariadb || true)" = "$PWD" ] || \
  ln -sfn "$PWD" .build/ansible_collections/reseed/mariadb
