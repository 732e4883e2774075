{{/*
initkit.step.register: the CLI arguments of a register step, as YAML {args: [...], mounts: [...]}.
url and headers go through tpl (initkit's runtime Jinja in them is written
{{ "{{ pod.ip }}" }}); data and json are initkit's runtime Jinja and are passed as written.
Usage (from initkit.container):
  {{- $out := include "initkit.step.register" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.register" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $args := list (include "initkit.tpl" (dict "value" (required (printf "%s: url is required" .where) $step.url) "context" .context)) -}}
{{- with $step.method }}{{ $args = concat $args (list "--method" .) }}{{ end -}}
{{- if and $step.data $step.json }}{{ fail (printf "%s: set either data or json, not both" .where) }}{{ end -}}
{{- with $step.data }}{{ $args = concat $args (list "--data" .) }}{{ end -}}
{{- with $step.json }}{{ $args = concat $args (list "--json" (kindIs "string" . | ternary . (toJson .))) }}{{ end -}}
{{- range $step.headers | default list }}{{ $args = concat $args (list "--header" (include "initkit.tpl" (dict "value" . "context" $.context))) }}{{ end -}}
{{- with $file.token }}{{ $args = concat $args (list "--token-file" .) }}{{ end -}}
{{- with $file.ca }}{{ $args = concat $args (list "--ca-file" .) }}{{ end -}}
{{- with $step.attempts }}{{ $args = concat $args (list "--attempts" (toString .)) }}{{ end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list)) -}}
{{- end -}}
