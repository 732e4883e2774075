{{/*
initkit.step.wait-for: the CLI arguments of a wait-for step, as YAML {args: [...], mounts: [...]}.
targets and dnsServer go through tpl.
Usage (from initkit.container):
  {{- $out := include "initkit.step.wait-for" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.wait-for" -}}
{{- $step := .step -}}
{{- $args := list -}}
{{- range (required (printf "%s: targets is required" .where) $step.targets) -}}
{{- if not (kindIs "string" .) }}{{ fail (printf "%s: target %v must be a string such as dns:NAME or tcp:HOST:PORT" $.where .) }}{{ end -}}
{{- $args = append $args (toString .) -}}
{{- end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- with $step.interval }}{{ $args = concat $args (list "--interval" (include "initkit.duration" .)) }}{{ end -}}
{{- with $step.dnsServer }}{{ $args = concat $args (list "--dns-server" (toString .)) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list)) -}}
{{- end -}}
