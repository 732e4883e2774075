{{/*
initkit.step.render: the CLI arguments and the volume mount of a render step, as YAML
{args: [...], mounts: [...]}. One of three forms:
- `template` (a ConfigMap or Secret ref): render it into dest, with `values` refs;
- `merge` (a list of refs): deep-merge those YAML/JSON files in order into dest
  (`--merge ... --to DEST`);
- `edit` (a file in the volume, e.g. one a copy step put there): apply `set` to it,
  keeping its comments and order, written back or to dest (`--edit ... [--to DEST]`).
`set` (map, sorted) → --set K=V; `setFile` (map of Secret refs, sorted) → --set-file K=PATH.
dest, edit and the `set` values go through tpl; the template file is initkit's runtime
Jinja and is never touched.
Usage (from initkit.container):
  {{- $out := include "initkit.step.render" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.render" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $ctx := .context -}}
{{- $where := .where -}}
{{- $forms := list -}}
{{- range $key := list "template" "merge" "edit" }}{{ if index $step $key }}{{ $forms = append $forms $key }}{{ end }}{{ end -}}
{{- if ne (len $forms) 1 -}}
{{- fail (printf "%s: give exactly one of template (render), merge (files to deep-merge) or edit (a file to change); got %s" $where ($forms | join ", " | default "none")) -}}
{{- end -}}
{{- $form := first $forms -}}
{{- $out := include "initkit.destination" (dict "step" $step "where" $where "context" $ctx "defaultToMount" false "optional" (eq $form "edit")) | fromYaml -}}
{{- $args := list -}}
{{- if eq $form "template" -}}
{{- $args = list $file.template $out.dest -}}
{{- range $i, $v := $step.values | default list }}{{ $args = concat $args (list "--values" (index $file (printf "values-%d" $i))) }}{{ end -}}
{{- else -}}
{{- if $step.values }}{{ fail (printf "%s: values are for a template; with %s, give set or setFile" $where $form) }}{{ end -}}
{{- if eq $form "merge" -}}
{{- if not (kindIs "slice" $step.merge) }}{{ fail (printf "%s: merge is a list of refs ({configMap: NAME, key: KEY} or {secret: ...}), merged in order" $where) }}{{ end -}}
{{- range $i, $v := $step.merge }}{{ $args = concat $args (list "--merge" (index $file (printf "merge-%d" $i))) }}{{ end -}}
{{- $args = concat $args (list "--to" $out.dest) -}}
{{- else -}}
{{- $edit := toString $step.edit -}}
{{- $base := trimSuffix "/" $out.mount.mountPath -}}
{{- if not (hasPrefix (printf "%s/" $base) $edit) -}}
{{- fail (printf "%s: edit %q must be a file below %s (the volume it changes)" $where $edit $out.mount.mountPath) -}}
{{- end -}}
{{- $args = list "--edit" $edit -}}
{{- if and $out.dest (ne $out.dest $edit) }}{{ $args = concat $args (list "--to" $out.dest) }}{{ end -}}
{{- if not (or $step.set $step.setFile) }}{{ fail (printf "%s: edit changes the keys of set or setFile; give one" $where) }}{{ end -}}
{{- end -}}
{{- with $step.format }}{{ $args = concat $args (list "--format" (toString .)) }}{{ end -}}
{{- end -}}
{{- $set := $step.set | default dict -}}
{{- range $key := keys $set | sortAlpha -}}
{{- $value := index $set $key -}}
{{- if kindIs "float64" $value }}{{ if eq $value (float64 (int64 $value)) }}{{ $value = int64 $value }}{{ end }}{{ end -}}
{{- $args = concat $args (list "--set" (printf "%s=%s" $key (toString $value))) -}}
{{- end -}}
{{- $setFile := $step.setFile | default dict -}}
{{- range $i, $key := keys $setFile | sortAlpha -}}
{{- $args = concat $args (list "--set-file" (printf "%s=%s" $key (index $file (printf "set-file-%d" $i)))) -}}
{{- end -}}
{{- with $step.mode }}{{ $args = concat $args (list "--mode" (toString .)) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list $out.mount)) -}}
{{- end -}}

{{/*
initkit.destination: the pod volume mount (with its subPath, if any) and the destination
path of a step that writes (git-clone, render, fetch, copy, certs), as YAML {mount: {...}, dest: PATH}. The
destination must be the mountPath or below it: the root filesystem is read-only.
`defaultToMount`: dest defaults to the mountPath; `optional`: dest may be left out ("").
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
{{- else if not .optional -}}
{{- $dest = required (printf "%s: dest is required (the file to write under %s)" .where $mountPath) $dest -}}
{{- end -}}
{{- if and $dest (not (or (eq $dest $mountPath) (hasPrefix (printf "%s/" (trimSuffix "/" $mountPath)) $dest))) -}}
{{- fail (printf "%s: dest %q must be %s or below it (the root filesystem is read-only)" .where $dest $mountPath) -}}
{{- end -}}
{{- $mount := dict "name" (toString $name) "mountPath" $mountPath -}}
{{- with $volume.subPath }}{{ $_ := set $mount "subPath" (toString .) }}{{ end -}}
{{- toYaml (dict "mount" $mount "dest" $dest) -}}
{{- end -}}
