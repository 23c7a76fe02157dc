#!/usr/bin/env bash
# ansible-test sanity on the collection, laid out as ansible-test wants it:
# .build/sanity/ansible_collections/reseed/mariadb, a copy of the files git knows (tracked
# and new, not ignored). Runs in its own venv (.build/venv-sanity) with the pinned
# ansible-core, so ansible-test's pinned linters do not clash with the test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
# One run at a time: a second one would empty .build/sanity under the first.
mkdir -p .build
exec 9>.build/sanity.lock
flock 9
# SANITY_CORE=2.17.14: that ansible-core instead of requirements.txt's (scripts/matrix.sh),
# in a venv of its own.
if [ -n "${SANITY_CORE:-}" ]; then
  core="ansible-core==$SANITY_CORE"
  venv=.build/venv-sanity-$SANITY_CORE
else
  core=$(grep -E '^ansible-core==' requirements.txt)
  venv=.build/venv-sanity
fi
if [ ! -x "$venv/bin/ansible-test" ] || ! "$venv/bin/pip" show -q ansible-core 2>/dev/null | grep -q .; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check "$core"

# ansible-test bootstraps pip in its venvs with a script downloaded from a host CI cannot
# reach; put our offline stand-in where it caches that script.
pip_version=$("$venv/bin/python" - <<'PY'
import re, ansible_test, os
src = open(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')).read()
print(re.search(r"pip='([0-9.]+)'", src).group(1))
PY
)
mkdir -p ~/.ansible/test/cache
cp scripts/get_pip_offline.py ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"

dest=.build/sanity/ansible_collections/reseed/mariadb
rm -rf "$dest"
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && cp --parents -P "$f" "$dest/"
done
cd "$dest"
# Inside our checkout's ignored .build, ansible-test would see only ignored files: give the
# copy a git index of its own.
git init -q . && git add -A
exec "$top/$venv/bin/ansible-test" sanity --local --python 3.11 --requirements --color no "$@"
