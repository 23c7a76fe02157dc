# reseed.mariadb: every entry point a user or CI runs. Needs root on Debian 12.
SHELL := /bin/bash
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.build
export PYTHONPATH := $(CURDIR)/.build
# Scenarios live in molecule/ (see docs/DEVELOPMENT.md); naming the glob keeps molecule from
# asking us to move them to extensions/molecule/.
export MOLECULE_GLOB := molecule/*/molecule.yml
# Plain logs in CI and terminals alike.
export NO_COLOR := 1
export ANSIBLE_NOCOLOR := 1

.PHONY: demo test deps deps-test unit sanity lint docs matrix integration reliability molecule bench lab-down build changelog clean

## make demo: install what is needed, build a lab (1 primary, 2 replicas), break the replicas, heal them.
demo: deps
	scripts/demo.sh

## make test: install what is needed, then unit tests, sanity, lint, the ansible-core matrix, lab tests
## and molecule.
test: deps-test
	scripts/test.sh

deps:
	scripts/install-deps.sh

deps-test:
	scripts/install-deps.sh test

unit: deps-test
	scripts/test.sh unit

sanity: deps-test
	scripts/test.sh sanity

lint: deps-test
	scripts/test.sh lint

## make docs: the docs site (antsibull-docs and Sphinx: the modules, the filter, the role, the guides in
## docs/*.md) into .build/docs/html; fails on a broken reference (scripts/docs.sh).
docs: deps-test
	scripts/test.sh docs

## make matrix: unit tests and sanity on ansible-core 2.17 and 2.18 too, a lab rebuild on 2.17
## (scripts/matrix.sh; every other suite runs requirements.txt's ansible-core).
matrix: deps-test
	scripts/test.sh matrix

integration: deps-test
	scripts/test.sh integration

## make reliability: the reliability suite with its slow cases too (docs/RELIABILITY.md).
reliability: deps-test
	RESEED_RELIABILITY_SLOW=1 python -m pytest tests/integration/test_reliability.py -q -p no:cacheprovider -rfE -s

molecule: deps-test
	scripts/test.sh molecule

## make bench: measure the data path and the rebuild on the lab (BENCH_ARGS='--size-gb 8 --only stages,ours');
## not part of make test. Installs what it needs first (mydumper, matplotlib).
bench:
	scripts/install-deps.sh bench
	python bench/bench.py $(BENCH_ARGS)

build: deps
	ansible-galaxy collection build --force --output-path .build/dist

## make changelog: lint the changelog fragments, then render CHANGELOG.md as the release of galaxy.yml's
## version would write it, into .build/changelog/CHANGELOG.md (a copy of the checkout is released; the
## fragments and CHANGELOG.md stay as they are). See docs/DEVELOPMENT.md, "Changelog fragments".
changelog: deps-test
	antsibull-changelog lint
	rm -rf .build/changelog
	mkdir -p .build/changelog/ansible_collections/reseed/mariadb
	git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do \
	  [ ! -e "$$f" ] || cp --parents -P "$$f" .build/changelog/ansible_collections/reseed/mariadb/; done
	# antsibull-changelog reads the plugins git knows: inside our ignored .build the copy needs an index.
	cd .build/changelog/ansible_collections/reseed/mariadb && git init -q . && git add -A && \
	  ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.build/changelog \
	  antsibull-changelog release --version "$$(sed -n 's/^version: *//p' galaxy.yml)"
	cp .build/changelog/ansible_collections/reseed/mariadb/CHANGELOG.md .build/changelog/CHANGELOG.md
	@echo "changelog preview: .build/changelog/CHANGELOG.md"

## make lab-down: remove every lab host, the bridge and the lab's files.
lab-down:
	python3 tests/lab/lab.py down --all

clean: lab-down
	rm -rf .build
