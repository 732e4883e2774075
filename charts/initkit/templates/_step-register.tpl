{{/*
initkit.step.register: the CLI arguments of a register step, as YAML {args: [...], mounts: [...]},
plus restartPolicy: Always for a sidecar. url, headers and sidecar.url go through tpl
(initkit's runtime Jinja in them is written {{ "{{ pod.ip }}" }}); data, json and
sidecar.data/json are initkit's runtime Jinja and are passed as written.
With `sidecar` ({method, url, data or json, timeout, heartbeat}) the step is a Kubernetes
1.29+ native sidecar (an init container with restartPolicy: Always): it registers, stays
running beside the app and, when the pod stops, sends the deregister request.
Usage (from initkit.container):
  {{- $out := include "initkit.step.register" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.register" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $args := list (toString (required (printf "%s: url is required" .where) $step.url)) -}}
{{- with $step.method }}{{ $args = concat $args (list "--method" .) }}{{ end -}}
{{- if and $step.data $step.json }}{{ fail (printf "%s: set either data or json, not both" .where) }}{{ end -}}
{{- with $step.data }}{{ $args = concat $args (list "--data" .) }}{{ end -}}
{{- with $step.json }}{{ $args = concat $args (list "--json" (kindIs "string" . | ternary . (toJson .))) }}{{ end -}}
{{- range $step.headers | default list }}{{ $args = concat $args (list "--header" (toString .)) }}{{ end -}}
{{- with $file.token }}{{ $args = concat $args (list "--token-file" .) }}{{ end -}}
{{- with $file.ca }}{{ $args = concat $args (list "--ca-file" .) }}{{ end -}}
{{- with $step.attempts }}{{ $args = concat $args (list "--attempts" (toString .)) }}{{ end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- $out := dict "args" $args "mounts" (list) -}}
{{- if hasKey $step "sidecar" -}}
{{- $sidecar := $step.sidecar -}}
{{- if not (kindIs "map" $sidecar) }}{{ fail (printf "%s: sidecar must be a map such as {method: DELETE, timeout: 10s}" .where) }}{{ end -}}
{{- if not (or $sidecar.method $sidecar.heartbeat) }}{{ fail (printf "%s: sidecar needs a method (the deregister request's, e.g. DELETE), a heartbeat, or both" .where) }}{{ end -}}
{{- $kube := .context.Capabilities.KubeVersion.Version -}}
{{- if not (semverCompare ">=1.29.0-0" $kube) -}}
{{- fail (printf "%s: sidecar needs Kubernetes 1.29 or newer (a native sidecar: an init container with restartPolicy: Always), the target is %s; remove sidecar to register only" .where $kube) -}}
{{- end -}}
{{- with $sidecar.method }}{{ $args = concat $args (list "--deregister-method" .) }}{{ end -}}
{{- if and (or $sidecar.url $sidecar.data $sidecar.json) (not $sidecar.method) }}{{ fail (printf "%s: sidecar url, data and json describe the deregister request: set sidecar.method too" .where) }}{{ end -}}
{{- with $sidecar.url }}{{ $args = concat $args (list "--deregister-url" (toString .)) }}{{ end -}}
{{- if and $sidecar.data $sidecar.json }}{{ fail (printf "%s: sidecar: set either data or json, not both" .where) }}{{ end -}}
{{- with $sidecar.data }}{{ $args = concat $args (list "--deregister-data" .) }}{{ end -}}
{{- with $sidecar.json }}{{ $args = concat $args (list "--deregister-json" (kindIs "string" . | ternary . (toJson .))) }}{{ end -}}
{{- with $sidecar.timeout }}{{ $args = concat $args (list "--deregister-timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- with $sidecar.heartbeat }}{{ $args = concat $args (list "--heartbeat" (include "initkit.duration" .)) }}{{ end -}}
{{- $out = dict "args" $args "mounts" (list) "restartPolicy" "Always" -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}
