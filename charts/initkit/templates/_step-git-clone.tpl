{{/*
initkit.step.git-clone: the CLI arguments and the volume mount of a git-clone step, as
YAML {args: [...], mounts: [...]}. repo, ref, username and dest go through tpl.
Usage (from initkit.container):
  {{- $out := include "initkit.step.git-clone" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.git-clone" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $ctx := .context -}}
{{- $out := include "initkit.destination" (dict "step" $step "where" .where "context" $ctx "defaultToMount" true) | fromYaml -}}
{{- $args := list (toString (required (printf "%s: repo is required" .where) $step.repo)) $out.dest -}}
{{- with $step.ref }}{{ $args = concat $args (list "--ref" (toString .)) }}{{ end -}}
{{- if hasKey $step "depth" }}{{ $args = concat $args (list "--depth" (toString $step.depth)) }}{{ end -}}
{{- $submodules := $step.submodules -}}
{{- if kindIs "bool" $submodules }}{{ $submodules = ternary "recursive" "off" $submodules }}{{ end -}}
{{- with $submodules }}{{ $args = append $args (printf "--submodules=%s" .) }}{{ end -}}
{{- with $step.username }}{{ $args = concat $args (list "--username" (toString .)) }}{{ end -}}
{{- with $file.password }}{{ $args = concat $args (list "--password-file" .) }}{{ end -}}
{{- if and $file.password (not $step.username) }}{{ fail (printf "%s: password needs a username" .where) }}{{ end -}}
{{- with (index $file "ssh-key") }}{{ $args = concat $args (list "--ssh-key-file" .) }}{{ end -}}
{{- with (index $file "known-hosts") }}{{ $args = concat $args (list "--known-hosts-file" .) }}{{ end -}}
{{- if and (index $file "ssh-key") (not (index $file "known-hosts")) }}{{ fail (printf "%s: sshKey needs knownHosts (host keys are always checked)" .where) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list $out.mount)) -}}
{{- end -}}
