"""A user's own chart: the initkit dependency in Chart.yaml plus one include line in
the pod template (as the README shows) renders valid, hardened init containers."""

from __future__ import annotations

import textwrap
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.charts.conftest import KUBE_VERSIONS, Helm

pytestmark = pytest.mark.helm

DEPLOYMENT_ONE_LINE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      {{- include "initkit.pod" . | nindent 6 }}
      containers:
        - name: web
          image: nginx:1.27
          volumeMounts:
            - {name: site, mountPath: /usr/share/nginx/html, readOnly: true}
"""

DEPLOYMENT_OWN_VOLUMES = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      initContainers:
        {{- include "initkit.initContainers" . | nindent 8 }}
      containers:
        - name: web
          image: nginx:1.27
      volumes:
        - {name: cache, emptyDir: {}}
        {{- include "initkit.volumes" . | nindent 8 }}
"""

VALUES = """\
initkit:
  volumes:
    - name: site
      emptyDir: {}
  steps:
    - kind: wait-for
      targets: ["tcp:db:5432"]
      timeout: 2m
    - kind: git-clone
      repo: https://git.example.invalid/site.git
      username: bot
      password: {secret: git-credentials, key: password}
      volume: {name: site, mountPath: /site}
"""


def make_chart(helm: Helm, tmp_path: Path, template: str, values: str = VALUES) -> Path:
    chart = tmp_path / "mychart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(
        textwrap.dedent(f"""\
            apiVersion: v2
            name: mychart
            version: 1.0.0
            dependencies:
              - name: initkit
                version: 0.1.0
                repository: file://{helm.library}
            """)
    )
    (chart / "values.yaml").write_text(values)
    (chart / "templates" / "deployment.yaml").write_text(template)
    helm.run("dependency", "build", chart)
    return chart


@pytest.mark.parametrize("template", [DEPLOYMENT_ONE_LINE, DEPLOYMENT_OWN_VOLUMES], ids=["pod", "separate"])
def test_users_chart_gets_init_containers(helm: Helm, tmp_path: Path, template: str) -> None:
    chart = make_chart(helm, tmp_path, template)
    (deployment,) = [d for d in yaml.safe_load_all(helm.template_text(chart=chart)) if d]
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(deployment, version, strict=True)
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["initkit-wait-for", "initkit-git-clone"]
    assert all(c["securityContext"]["runAsNonRoot"] for c in spec["initContainers"])
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["initkit-git-clone-password"]["secret"]["secretName"] == "git-credentials"
    assert "site" in volumes


def test_library_defaults_apply_without_an_initkit_block(helm: Helm, tmp_path: Path) -> None:
    chart = make_chart(helm, tmp_path, DEPLOYMENT_ONE_LINE)
    (chart / "values.yaml").write_text("{}\n")
    (deployment,) = [d for d in yaml.safe_load_all(helm.template_text(chart=chart)) if d]
    spec = deployment["spec"]["template"]["spec"]
    assert "initContainers" not in spec and "volumes" not in spec


def test_the_readme_example_renders(helm: Helm, tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("```yaml\ninitkit:\n") + len("```yaml\n")
    values = readme[start : readme.index("```", start)]
    template = DEPLOYMENT_ONE_LINE.split("          volumeMounts:")[0]  # the app mounts nothing here
    chart = make_chart(helm, tmp_path, template, values)
    (deployment,) = [d for d in yaml.safe_load_all(helm.template_text(chart=chart)) if d]
    for version in KUBE_VERSIONS:
        kubernetes_validate.validate(deployment, version, strict=True)
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["initkit-wait-for", "initkit-register"]
    register = spec["initContainers"][1]
    assert "https://registry.example.com/instances" in register["args"]
