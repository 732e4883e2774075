{{/*
initkit.step.render: the CLI arguments and the volume mount of a render step, as YAML
{args: [...], mounts: [...]}. dest and the `set` values go through tpl; the template
file (from a ConfigMap or Secret) is initkit's runtime Jinja and is never touched.
Usage (from initkit.container):
  {{- $out := include "initkit.step.render" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.render" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $ctx := .context -}}
{{- $out := include "initkit.destination" (dict "step" $step "where" .where "context" $ctx "defaultToMount" false) | fromYaml -}}
{{- $args := list (required (printf "%s: template is required" .where) $file.template) $out.dest -}}
{{- range $i, $v := $step.values | default list }}{{ $args = concat $args (list "--values" (index $file (printf "values-%d" $i))) }}{{ end -}}
{{- $set := $step.set | default dict -}}
{{- range $key := keys $set | sortAlpha -}}
{{- $args = concat $args (list "--set" (printf "%s=%s" $key (toString (index $set $key)))) -}}
{{- end -}}
{{- with $step.mode }}{{ $args = concat $args (list "--mode" (toString .)) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list $out.mount)) -}}
{{- end -}}

{{/*
initkit.destination: the pod volume mount (with its subPath, if any) and the destination
path of a step that writes (git-clone, render, fetch), as YAML {mount: {...}, dest: PATH}. The
destination must be the mountPath or below it: the root filesystem is read-only.
Usage:
  {{- $out := include "initkit.destination" (dict "step" $step "where" $where "context" $ctx "defaultToMount" true) | fromYaml }}
*/}}
{{- define "initkit.destination" -}}
{{- $volume := .step.volume | default dict -}}
{{- $name := required (printf "%s: volume.name is required (the pod volume it writes into)" .where) (dig "name" "" $volume) -}}
{{- $mountPath := required (printf "%s: volume.mountPath is required" .where) (dig "mountPath" "" $volume) -}}
{{- $dest := toString (.step.dest | default "") -}}
{{- if .defaultToMount -}}
{{- $dest = $dest | default $mountPath -}}
{{- else -}}
{{- $dest = required (printf "%s: dest is required (the file to write under %s)" .where $mountPath) $dest -}}
{{- end -}}
{{- if not (or (eq $dest $mountPath) (hasPrefix (printf "%s/" (trimSuffix "/" $mountPath)) $dest)) -}}
{{- fail (printf "%s: dest %q must be %s or below it (the root filesystem is read-only)" .where $dest $mountPath) -}}
{{- end -}}
{{- $mount := dict "name" (toString $name) "mountPath" $mountPath -}}
{{- with $volume.subPath }}{{ $_ := set $mount "subPath" (toString .) }}{{ end -}}
{{- toYaml (dict "mount" $mount "dest" $dest) -}}
{{- end -}}
