{{/*
initkit.step.fetch: the CLI arguments and the volume mount of a fetch step (a verified
download, optionally extracted), as YAML {args: [...], mounts: [...]}. url, dest and
headers go through tpl. dest must be below the volume's mountPath, not the mountPath
itself: fetch renames a temp file (or directory) beside dest into place.
Replaces: wget -O- URL | tar xz -C /plugins
Usage (from initkit.container):
  {{- $out := include "initkit.step.fetch" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.fetch" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $ctx := .context -}}
{{- $where := .where -}}
{{- $out := include "initkit.destination" (dict "step" $step "where" $where "context" $ctx "defaultToMount" false) | fromYaml -}}
{{- if eq (trimSuffix "/" $out.dest) (trimSuffix "/" $out.mount.mountPath) -}}
{{- fail (printf "%s: dest %q is the volume's mountPath; give a path below it (fetch renames a temp file beside dest into place), e.g. %s/plugin" $where $out.dest (trimSuffix "/" $out.mount.mountPath)) -}}
{{- end -}}
{{- $sha := toString (required (printf "%s: sha256 is required (the download is verified against it)" $where) $step.sha256) -}}
{{- if not (regexMatch "^[0-9a-fA-F]{64}$" $sha) -}}
{{- fail (printf "%s: sha256 must be 64 hex digits" $where) -}}
{{- end -}}
{{- $args := list (toString (required (printf "%s: url is required" $where) $step.url)) $out.dest "--sha256" $sha -}}
{{- if $step.extract }}{{ $args = append $args "--extract" }}{{ end -}}
{{- if hasKey $step "stripComponents" -}}
{{- if not $step.extract }}{{ fail (printf "%s: stripComponents needs extract: true" $where) }}{{ end -}}
{{- $args = concat $args (list "--strip-components" (printf "%d" (int64 $step.stripComponents))) -}}
{{- end -}}
{{- if hasKey $step "mode" -}}
{{- if $step.extract }}{{ fail (printf "%s: mode is the mode of a downloaded file; with extract: true the archive's entries keep theirs" $where) }}{{ end -}}
{{- if not (kindIs "string" $step.mode) }}{{ fail (printf "%s: mode must be a string: quote it (mode: \"0755\"), YAML reads 0755 as the number 493" $where) }}{{ end -}}
{{- $args = concat $args (list "--mode" $step.mode) -}}
{{- end -}}
{{- range $step.headers | default list }}{{ $args = concat $args (list "--header" (toString .)) }}{{ end -}}
{{- with $file.token }}{{ $args = concat $args (list "--token-file" .) }}{{ end -}}
{{- with $file.ca }}{{ $args = concat $args (list "--ca-file" .) }}{{ end -}}
{{- with $step.attempts }}{{ $args = concat $args (list "--attempts" (toString .)) }}{{ end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list $out.mount)) -}}
{{- end -}}
