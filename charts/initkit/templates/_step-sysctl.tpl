{{/*
initkit.step.sysctl: the CLI arguments of a sysctl step, as YAML {args: [...], mounts: []}:
`KEY=VALUE` for each of `settings` (sorted), `--exact` with exact: true. A key that is not
namespaced (vm.*, fs.file-max, ...) is the node's, and only a privileged container may
write it: rendering fails unless the step says `privileged: true`, so the privilege is
always visible in values (initkit.securityContext then runs it as root, privileged).
Namespaced keys (as Kubernetes counts them: kernel.sem, kernel.shm*, kernel.msg*,
fs.mqueue.*, net.* but net.netfilter.nf_conntrack_max and nf_conntrack_expect_max) are
better set by the pod's securityContext.sysctls, with no privilege at all.
Replaces: a privileged os-shell running sysctl -w vm.max_map_count=262144
Usage (from initkit.container):
  {{- $out := include "initkit.step.sysctl" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.sysctl" -}}
{{- $step := .step -}}
{{- $where := .where -}}
{{- $settings := $step.settings | default dict -}}
{{- if not (and (kindIs "map" $settings) $settings) -}}
{{- fail (printf "%s: settings is required: a map of KEY: VALUE, e.g. {vm.max_map_count: 262144}" $where) -}}
{{- end -}}
{{- $args := list -}}
{{- range $key := keys $settings | sortAlpha -}}
{{- $value := index $settings $key -}}
{{- if kindIs "float64" $value }}{{ $value = int64 $value }}{{ end -}}
{{- $value = toString $value -}}
{{- if not (include "initkit.sysctl.namespaced" $key) -}}
{{- if not $step.privileged -}}
{{- fail (printf "%s: %s is not namespaced (it is the node's): only a privileged container may set it; set privileged: true on the step to run it privileged, as root" $where $key) -}}
{{- end -}}
{{- end -}}
{{- $args = append $args (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- if $step.exact }}{{ $args = append $args "--exact" }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list)) -}}
{{- end -}}

{{/*
initkit.sysctl.namespaced: "true" when a sysctl key (dotted or slashed) is namespaced as
Kubernetes counts it (settable by the pod's securityContext.sysctls), else "".
Usage:
  {{- if include "initkit.sysctl.namespaced" "net.core.somaxconn" }}...{{ end }}
*/}}
{{- define "initkit.sysctl.namespaced" -}}
{{- $key := . -}}
{{- if contains "/" $key }}{{ $key = replace "/" "." $key }}{{ end -}}
{{- if or (eq $key "kernel.sem") (hasPrefix "kernel.shm" $key) (hasPrefix "kernel.msg" $key) (hasPrefix "fs.mqueue." $key) -}}
true
{{- else if and (hasPrefix "net." $key) (not (has $key (list "net.netfilter.nf_conntrack_max" "net.netfilter.nf_conntrack_expect_max"))) -}}
true
{{- end -}}
{{- end -}}

{{/*
initkit.sysctlSecurityContext: the securityContext of a sysctl step with privileged: true:
root (uid 0), privileged (the node's /proc/sys is read-only otherwise), a read-only root
filesystem, the configuration's other keys (seccompProfile, ...) and the step's own keys
on top. Pod Security: privileged (neither baseline nor restricted admits it). OpenShift's
restricted SCC refuses it: under adaptSecurityContext rendering fails unless
openshiftAllowRoot: true.
Usage (from initkit.securityContext):
  {{- include "initkit.sysctlSecurityContext" (dict "values" .Values.initkit "context" $ "step" $step) }}
*/}}
{{- define "initkit.sysctlSecurityContext" -}}
{{- $step := .step -}}
{{- if and (include "initkit.openshift" .context) (not $step.openshiftAllowRoot) -}}
{{- fail (printf "initkit: step %q (sysctl) runs privileged, as root, which OpenShift's restricted SCC refuses: grant its service account the privileged SCC and set openshiftAllowRoot: true on the step, or use the pod's securityContext.sysctls for namespaced keys" $step.name) -}}
{{- end -}}
{{- $sc := omit (deepCopy (.values.securityContext | default dict)) "capabilities" -}}
{{- $_ := set $sc "runAsUser" 0 -}}
{{- $_ := set $sc "runAsGroup" 0 -}}
{{- $_ := set $sc "runAsNonRoot" false -}}
{{- $_ := set $sc "privileged" true -}}
{{- $_ := set $sc "allowPrivilegeEscalation" true -}}
{{- $_ := set $sc "readOnlyRootFilesystem" true -}}
{{- range $key, $value := ($step.securityContext | default dict) }}{{ $_ := set $sc $key $value }}{{ end -}}
{{- toYaml $sc -}}
{{- end -}}
