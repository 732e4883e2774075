.PHONY: images
# Build initkit:dev, initkit:dev-slim, initkit:<version>, initkit:<version>-slim
# on the local Docker engine (see images/images.toml); smoke-checks and size budgets.
images:
	python3 images/build.py
