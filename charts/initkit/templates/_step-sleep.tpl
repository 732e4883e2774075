{{/*
initkit.step.sleep: the CLI arguments of a sleep step, as YAML {args: [...], mounts: [...]}.
Usage (from initkit.container):
  {{- $out := include "initkit.step.sleep" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.sleep" -}}
{{- $duration := required (printf "%s: duration is required" .where) .step.duration -}}
{{- toYaml (dict "args" (list (include "initkit.duration" $duration)) "mounts" (list)) -}}
{{- end -}}
