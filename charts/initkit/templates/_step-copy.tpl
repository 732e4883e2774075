{{/*
initkit.step.copy: the CLI arguments, the mounts and the source volume of a copy step
(files out of the app's image, a ConfigMap, a Secret or another volume, into a pod
volume), as YAML {args: [...], mounts: [...], volumes: [...]}. The source is mounted
read-only at /var/run/initkit/copy-src:
- from.image {reference, pullPolicy}: a Kubernetes image volume (`volumes[].image`,
  Kubernetes 1.31+, on by default since 1.35), pod volume `<step>-src`;
- from.configMap / from.secret NAME: pod volume `<step>-src` with every key; the copy
  reads the kubelet's `..data` directory, so the keys' own files are copied, not its links;
- from.volume NAME: a pod volume of yours, mounted read-only.
from.path is the directory (or file) inside the source (default /). dest (default the
volume's mountPath), from.*, path and mode go through tpl. `owner` makes the step run as
that user (runAsUser/runAsGroup; see initkit.securityContext), so the copies are the
app's and the step needs no capability (Pod Security restricted).
Replaces: an init container running the app's image for `cp -a /opt/app/conf/. /emptydir/conf/`
Usage (from initkit.container, and initkit.volumes for `volumes`):
  {{- $out := include "initkit.step.copy" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.copy" -}}
{{- $step := .step -}}
{{- $where := .where -}}
{{- $ctx := .context -}}
{{- $out := include "initkit.destination" (dict "step" $step "where" $where "context" $ctx "defaultToMount" true) | fromYaml -}}
{{- $from := $step.from | default dict -}}
{{- if not (kindIs "map" $from) }}{{ fail (printf "%s: from must be {image: {reference: ...}}, {configMap: NAME}, {secret: NAME} or {volume: NAME}" $where) }}{{ end -}}
{{- $sources := list -}}
{{- range $key := list "image" "configMap" "secret" "volume" }}{{ if hasKey $from $key }}{{ $sources = append $sources $key }}{{ end }}{{ end -}}
{{- if ne (len $sources) 1 -}}
{{- fail (printf "%s: from needs exactly one of image, configMap, secret or volume (got %d)" $where (len $sources)) -}}
{{- end -}}
{{- $source := first $sources -}}
{{- $dir := "/var/run/initkit/copy-src" -}}
{{- $name := printf "%s-src" $step.name -}}
{{- $volumes := list -}}
{{- $mode := .fileMode | default 292 | int -}}
{{- if eq $source "image" -}}
{{- if not (semverCompare ">=1.31.0-0" $ctx.Capabilities.KubeVersion.Version) -}}
{{- fail (printf "%s: from.image is a Kubernetes image volume, which needs Kubernetes 1.31 or newer (on by default since 1.35); the target is %s: use from.configMap, from.secret or from.volume" $where $ctx.Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- $image := $from.image -}}
{{- if kindIs "string" $image }}{{ $image = dict "reference" $image }}{{ end -}}
{{- $ref := toString (required (printf "%s: from.image.reference is required (the image whose files it copies)" $where) $image.reference) -}}
{{- $volume := dict "reference" $ref -}}
{{- with $image.pullPolicy -}}
{{- if not (has . (list "Always" "IfNotPresent" "Never")) }}{{ fail (printf "%s: from.image.pullPolicy %q is not Always, IfNotPresent or Never" $where .) }}{{ end -}}
{{- $_ := set $volume "pullPolicy" . -}}
{{- end -}}
{{- $volumes = append $volumes (dict "name" $name "image" $volume) -}}
{{- else if eq $source "configMap" -}}
{{- $volumes = append $volumes (dict "name" $name "configMap" (dict "name" (toString $from.configMap) "defaultMode" $mode)) -}}
{{- $dir = printf "%s/..data" $dir -}}
{{- else if eq $source "secret" -}}
{{- $volumes = append $volumes (dict "name" $name "secret" (dict "secretName" (toString $from.secret) "defaultMode" $mode)) -}}
{{- $dir = printf "%s/..data" $dir -}}
{{- else -}}
{{- $name = toString $from.volume -}}
{{- if eq $name $out.mount.name }}{{ fail (printf "%s: from.volume %q is the volume it writes into; copy from another volume" $where $name) }}{{ end -}}
{{- end -}}
{{- $path := toString ($from.path | default "/") -}}
{{- if or (not (hasPrefix "/" $path)) (regexMatch "(^|/)\\.\\.(/|$)" $path) -}}
{{- fail (printf "%s: from.path %q must be absolute (inside the source), without .. components" $where $path) -}}
{{- end -}}
{{- $src := trimSuffix "/" (printf "%s%s" $dir $path) -}}
{{- $args := list $src $out.dest -}}
{{- if $step.overwrite }}{{ $args = append $args "--overwrite" }}{{ end -}}
{{- if hasKey $step "mode" -}}
{{- if not (kindIs "string" $step.mode) }}{{ fail (printf "%s: mode must be a string: quote an octal mode (mode: \"0750\")" $where) }}{{ end -}}
{{- $args = concat $args (list "--mode" $step.mode) -}}
{{- end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- $mounts := list (dict "name" $name "mountPath" "/var/run/initkit/copy-src" "readOnly" true) $out.mount -}}
{{- toYaml (dict "args" $args "mounts" $mounts "volumes" $volumes) -}}
{{- end -}}
