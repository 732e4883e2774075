# initkit: the front-door commands are `make demo`, `make test` and `make check` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test check docs setup images release lint bench bench-jobs bench-images bench-kube bench-kube-dns clean cluster cluster-down

# constraints.txt: the library versions the images ship (Debian trixie's), for the venv too.
$(VENV)/.runtime: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

# The release tools (CycloneDX library, python-debian, build, twine) in the same venv.
$(VENV)/.release: images/requirements-release.txt $(VENV)/.runtime
	$(PY) -m pip install -q -c constraints.txt -r images/requirements-release.txt
	touch $@

# The seed's scenario end to end against local servers the demo starts itself:
# two services that appear late, register, git clone, render; then a pod restart.
demo: $(VENV)/.runtime
	$(PY) examples/demo.py

# Root on Debian: installs packages, starts dockerd, builds the images, then runs
# every test (unit, real servers, images on Docker and podman, charts with helm 3+4).
test: setup $(VENV)/.test $(VENV)/.release images
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	CI=$${CI:-true} $(PY) -m pytest --cov=initkit --cov-report=term-missing:skip-covered -p no:cacheprovider

# The edit-test loop: lint, then every test that needs no root, no container engine and no
# release tools (unit tests, real servers on loopback, helm renders). Under 2 minutes.
CHECK_MARKERS := not docker and not podman and not release and not root and not cluster and not slow
# Workers (pytest-xdist): most of these tests wait on real servers and deadlines, so more
# workers than cores still shortens the run.
CHECK_JOBS ?= 6
check: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider -n $(CHECK_JOBS) -m "$(CHECK_MARKERS)"

# Regenerate what is generated from the code: the README's CLI reference (cog; checked by
# tests/test_docs.py), the library chart's schema and its README's parameter tables
# (checked by tests/charts/test_schema.py and test_readme.py).
docs: $(VENV)/.test
	$(VENV)/bin/cog -r README.md
	$(PY) charts/values_schema.py > charts/initkit/values.schema.json
	.ci/bin/readme-generator/node_modules/.bin/readme-generator --values charts/initkit/values.yaml --readme charts/initkit/README.md

setup:
	bash .ci/setup.sh

# Build initkit:dev, initkit:dev-slim, initkit:<version>, initkit:<version>-slim
# on the local Docker engine (see images/images.toml); smoke-checks and size budgets.
images:
	python3 images/build.py

# Build both images for linux/amd64 and linux/arm64 (buildah; arm64 under qemu), push one OCI
# image index per tag, an SBOM per image and platform, both charts (pinned to the pushed
# digest) and the sdist + wheel; prints every digest. REGISTRY defaults to images.toml's
# [publish] registry, VERSION to initkit's. Output (SBOMs, charts, dist, release.json): dist/release/.
REGISTRY ?=
VERSION ?=
release: $(VENV)/.release
	bash .ci/setup-release.sh
	REGISTRY=$(REGISTRY) VERSION=$(VERSION) $(PY) images/release.py

lint: $(VENV)/.test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfiles/Dockerfile

# bench/ starts the same loopback servers as the tests (tests/servers.py): the test venv.
bench: $(VENV)/.test
	$(PY) bench/bench_cli.py

# Root: permissions on a 100,000-file tmpfs tree against chown -R + chmod -R; fetch --extract
# against wget/curl | tar xz, each side by side in one run.
bench-jobs: $(VENV)/.test
	$(PY) bench/bench_permissions.py
	$(PY) bench/bench_fetch.py

bench-images:
	python3 bench/bench_images.py

# Root, on the node (`make cluster`): wait-for's API targets against `kubectl wait`, side by side.
bench-kube: $(VENV)/.test cluster
	$(PY) bench/bench_kube.py

# Root, on the node: wait-for dns: against the seed's busybox nslookup loop (Debian's
# busybox-static, built once), from a Service's creation to the app's start.
bench-kube-dns: $(VENV)/.test cluster
	$(PY) bench/bench_kube_dns.py

# A real single-node Kubernetes on this machine (root; see README "Kubernetes, for real"): builds
# it from pinned Go modules into /var/cache/initkit-cluster once, imports the images, returns once
# the node is Ready. .cluster/kubeconfig and .cluster/bin/{kubectl,helm} are then yours to use.
cluster:
	bash .ci/cluster/up.sh

# Stops all of it, in order, and removes its mounts, iptables chains and bridge.
cluster-down:
	bash .ci/cluster/down.sh

clean:
	rm -rf $(VENV) .coverage .coverage.* .pytest_cache .ruff_cache
