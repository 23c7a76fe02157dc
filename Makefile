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

.PHONY: demo test deps deps-test unit sanity lint integration reliability molecule bench lab-down build clean

## make demo: install what is needed, build a lab (1 primary, 2 replicas), break the replicas, heal them.
demo: deps
	scripts/demo.sh

## make test: install what is needed, then unit tests, sanity, lint, lab tests and molecule.
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

## make lab-down: remove every lab host, the bridge and the lab's files.
lab-down:
	python3 tests/lab/lab.py down --all

clean: lab-down
	rm -rf .build
