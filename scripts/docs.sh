#!/usr/bin/env bash
# The collection's docs, as a docs site and as Galaxy reads them:
#   scripts/docs.sh [site] [lint] [galaxy]     (no part: site; make docs)
# site    antsibull-docs writes the reference (the modules, the filter, the role's entry points
#         from roles/replica_rebuild/meta/argument_specs.yml) as reStructuredText, the guides
#         docs/*.md join it as Markdown (myst-parser), and Sphinx builds the HTML into
#         .build/docs/html. Fails on any error: a plugin whose docs do not parse
#         (--fail-on-error) and every Sphinx warning (-W: a reference to a module, option or
#         label that does not exist, a guide's missing image, a page in no table of contents).
# lint    antsibull-docs lint-collection-docs --plugin-docs: the docs' markup and references.
# galaxy  galaxy-importer, Galaxy's import check, on the tarball `ansible-galaxy collection
#         build` makes in .build/dist; configured by .ci/galaxy-importer.cfg (no ansible-test,
#         no containers, offline). Fails on any warning or error it reports.
# The docs suite runs site, the lint suite lint and galaxy (scripts/test.sh). Expects the
# environment the Makefile sets (ANSIBLE_COLLECTIONS_PATH=.build finds the collection).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
top=$PWD
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(site)

site() {
  local out=.build/docs src=.build/docs/site
  rm -rf "$out" && mkdir -p "$src" || return 1
  # antsibull-docs writes only into directories no one else may write to.
  chmod 755 "$out" "$src"
  cat > "$out/index.rst" <<'RST'
.. _docsite_root_index:

reseed.mariadb
==============

Heal broken MariaDB GTID replicas with one playbook run: the collection's modules, its filter
and its role, and the guides.

.. toctree::
   :maxdepth: 2
   :caption: Collection:

   collections/index

.. toctree::
   :maxdepth: 1
   :caption: Guides:
   :glob:

   guides/*

.. toctree::
   :maxdepth: 1
   :caption: Indexes:
   :glob:

   collections/index_*
   collections/environment_variables
RST
  antsibull-docs sphinx-init --use-current --dest-dir "$src" --index-rst-source "$out/index.rst" \
    --project reseed.mariadb --copyright 'reseed.mariadb developers' --title reseed.mariadb \
    reseed.mariadb >/dev/null || return 1
  cat >> "$src/conf.py" <<'PY'

# --- scripts/docs.sh ---
# The guides (docs/*.md) are Markdown.
extensions.append('myst_parser')
# Offline, here and in CI: intersphinx could fetch no inventory, and each miss is a warning.
intersphinx_mapping = {}
# Without ansible-core's inventory, the few labels of its documentation that antsibull-docs
# links to are linked here by hand; any other reference Sphinx cannot resolve stays a
# warning, which fails the build.
_ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/devel/'
_ANSIBLE_LABELS = {
    'action_plugins': ('plugins/action.html#action-plugins', 'Action plugins'),
    'ansible_configuration_settings': (
        'reference_appendices/config.html#ansible-configuration-settings',
        'Ansible Configuration Settings'),
    'common_return_values': (
        'reference_appendices/common_return_values.html#common-return-values', 'Return Values'),
}


def _ansible_core_label(app, env, node, contnode):
    from docutils import nodes
    if node.get('refdomain') != 'std' or node.get('reftype') != 'ref':
        return None
    found = _ANSIBLE_LABELS.get(node.get('reftarget'))
    if found is None:
        return None
    path, title = found
    ref = nodes.reference('', '', internal=False, refuri=_ANSIBLE_DOCS + path)
    ref += contnode if node.get('refexplicit') else nodes.inline(title, title)
    return ref


def setup(app):
    app.connect('missing-reference', _ansible_core_label)
PY
  mkdir -p "$src/rst" && chmod 755 "$src/rst" || return 1
  antsibull-docs --config-file "$src/antsibull-docs.cfg" collection --use-current \
    --fail-on-error --cleanup everything --dest-dir "$src/rst" reseed.mariadb || return 1
  mkdir -p "$src/rst/guides" && cp docs/*.md "$src/rst/guides/" && cp -r docs/img "$src/rst/guides/" ||
    return 1
  sphinx-build -b html -c "$src" -d "$src/doctrees" -W --keep-going -q "$src/rst" "$out/html" ||
    return 1
  echo "docs site: $out/html/index.html"
}

lint() {
  antsibull-docs lint-collection-docs --plugin-docs .
}

galaxy() {
  local venv=.build/venv-galaxy-importer work=.build/galaxy-importer version tarball findings
  if [ ! -x "$venv/bin/python" ]; then
    echo "docs: no $venv: run scripts/install-deps.sh test (make deps-test)"
    return 1
  fi
  version=$(sed -n 's/^version: *//p' galaxy.yml)
  tarball=$top/.build/dist/reseed-mariadb-$version.tar.gz
  ansible-galaxy collection build --force --output-path .build/dist >/dev/null || return 1
  rm -rf "$work" && mkdir -p "$work" || return 1
  # It writes importer_result.json into its working directory; its ansible-doc and
  # ansible-lint are the ones first on PATH.
  if ! (cd "$work" && GALAXY_IMPORTER_CONFIG=$top/.ci/galaxy-importer.cfg PATH=$top/$venv/bin:$PATH \
      "$top/$venv/bin/python" -m galaxy_importer.main "$tarball" > import.log 2>&1); then
    cat "$work/import.log"
    echo "galaxy-importer: the import failed"
    return 1
  fi
  # Every warning and error, less one that is wrong: the importer gives ansible-lint
  # ANSIBLE_COLLECTIONS_PATH=<its tmp>/ansible_collections, and ansible-lint looks for a
  # collection's playbook under <path>/ansible_collections/reseed/mariadb/playbooks/, that is
  # ansible_collections twice, so molecule/shared/converge.yml's import_playbook of
  # reseed.mariadb.rebuild_replica is "not found". The same ansible-lint on the extracted
  # tarball with the collections path one level up finds it and passes clean (tried), as the
  # lint suite's does (ANSIBLE_COLLECTIONS_PATH=.build).
  findings=$(grep -E '^(WARNING|ERROR|CRITICAL)' "$work/import.log" |
    grep -vxF 'WARNING: ERROR    Failed to find reseed.mariadb.rebuild_replica playbook.')
  if [ -n "$findings" ]; then
    echo "$findings"
    echo "galaxy-importer: findings above (full log: $work/import.log)"
    return 1
  fi
  echo "galaxy-importer: $(tail -n 1 "$work/import.log") ($work/import.log)"
}

rc=0
for part in "${parts[@]}"; do
  case $part in
    site) site || rc=1 ;;
    lint) lint || rc=1 ;;
    galaxy) galaxy || rc=1 ;;
    *) echo "docs: no part $part (site, lint, galaxy)"; rc=1 ;;
  esac
done
exit $rc
