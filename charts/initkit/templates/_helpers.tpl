{{/*
initkit library chart: shared helpers.

Every public template takes the parent chart's root context (`.` or `$`) and reads
the parent's `initkit:` values block (the dependency must be named `initkit`).
*/}}

{{/*
initkit.values: the parent's initkit values block (defaults merged by Helm), as YAML.
Usage:
  {{- $ik := include "initkit.values" . | fromYaml }}
*/}}
{{- define "initkit.values" -}}
{{- toYaml (.Values.initkit | default dict) -}}
{{- end -}}

{{/*
initkit.image: the full image reference of the initkit containers:
[global.imageRegistry or image.registry/]image.repository(:tag | @digest).
The tag defaults to the initkit chart's appVersion; a digest replaces the tag.
Usage:
  image: {{ include "initkit.image" . | quote }}
*/}}
{{- define "initkit.image" -}}
{{- $image := (.Values.initkit | default dict).image | default dict -}}
{{- $registry := $image.registry | default "" -}}
{{- with (.Values.global | default dict).imageRegistry }}{{ $registry = . }}{{ end -}}
{{- $repository := required "initkit: image.repository is required" $image.repository -}}
{{- $ref := $repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $repository }}{{ end -}}
{{- if $image.digest -}}
{{- $ref = printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- $tag := $image.tag | default "" | toString -}}
{{- if not $tag -}}
{{- $sub := index (.Subcharts | default dict) "initkit" -}}
{{- if $sub }}{{ $tag = $sub.Chart.AppVersion | default "" | toString }}{{ end -}}
{{- end -}}
{{- $ref = printf "%s:%s" $ref (required "initkit: image.tag is required (no initkit appVersion found)" $tag) -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
initkit.duration: a duration value as the CLI takes it: strings as given, numbers as seconds.
Usage:
  {{ include "initkit.duration" $step.timeout }}
*/}}
{{- define "initkit.duration" -}}
{{- if kindIs "string" . -}}
{{- . -}}
{{- else -}}
{{- printf "%ss" (toString .) -}}
{{- end -}}
{{- end -}}

{{/*
initkit.downwardEnv: the Downward API env of every initkit container
(POD_IP, POD_NAME, POD_NAMESPACE, POD_UID, NODE_NAME), as a YAML list.
Usage:
  env:
    {{- include "initkit.downwardEnv" . | nindent 4 }}
*/}}
{{- define "initkit.downwardEnv" -}}
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_UID
  valueFrom:
    fieldRef:
      fieldPath: metadata.uid
- name: NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
{{- end -}}

{{/*
initkit.securityContext: the hardened container securityContext of a step: the
initkit.securityContext values with the step's own securityContext keys on top.
Usage:
  securityContext:
    {{- include "initkit.securityContext" (dict "step" $step "context" $) | nindent 4 }}
*/}}
{{- define "initkit.securityContext" -}}
{{- $ik := .context.Values.initkit | default dict -}}
{{- $sc := deepCopy ($ik.securityContext | default dict) -}}
{{- range $key, $value := (.step.securityContext | default dict) }}{{ $_ := set $sc $key $value }}{{ end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/*
initkit.steps: the enabled steps in order, each with its container `name` set
(the step's name, else "initkit-<kind>", with "-<index>" added when taken), as
YAML `{steps: [...]}`.
Usage:
  {{- $steps := (include "initkit.steps" . | fromYaml).steps }}
*/}}
{{- define "initkit.steps" -}}
{{- $ik := .Values.initkit | default dict -}}
{{- $seen := dict -}}
{{- $out := list -}}
{{- range $index, $step := $ik.steps | default list -}}
{{- if not (kindIs "map" $step) -}}
{{- fail (printf "initkit: steps[%d] must be a map with a kind, got %v" $index $step) -}}
{{- end -}}
{{- if dig "enabled" true $step -}}
{{- $kind := required (printf "initkit: steps[%d].kind is required" $index) $step.kind -}}
{{- if not (has $kind (list "wait-for" "register" "sleep" "git-clone" "render")) -}}
{{- fail (printf "initkit: steps[%d].kind %q is unknown; use wait-for, register, sleep, git-clone or render" $index $kind) -}}
{{- end -}}
{{- $name := $step.name | default "" -}}
{{- if not $name -}}
{{- $name = printf "initkit-%s" $kind -}}
{{- if hasKey $seen $name }}{{ $name = printf "%s-%d" $name $index }}{{ end -}}
{{- end -}}
{{- if hasKey $seen $name -}}
{{- fail (printf "initkit: steps[%d]: container name %q is already used; give the step a distinct name" $index $name) -}}
{{- end -}}
{{- $_ := set $seen $name true -}}
{{- $out = append $out (merge (dict "name" $name "index" $index) $step) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "steps" $out) -}}
{{- end -}}

{{/*
initkit.refs: the Secret/ConfigMap files a step reads, as YAML `{refs: [...]}`;
each ref has purpose, volume (pod volume name), dir (mount path), path (file path),
key, and secret or configMap. Secret-only purposes (token, password, ssh-key)
fail on anything but a Secret reference.
Usage:
  {{- $refs := (include "initkit.refs" (dict "step" $step "context" $) | fromYaml).refs }}
*/}}
{{- define "initkit.refs" -}}
{{- $step := .step -}}
{{- $pairs := list -}}
{{- if eq $step.kind "register" -}}
{{- $pairs = append $pairs (list "token" $step.token true) -}}
{{- $pairs = append $pairs (list "ca" $step.ca false) -}}
{{- else if eq $step.kind "git-clone" -}}
{{- $pairs = append $pairs (list "password" $step.password true) -}}
{{- $pairs = append $pairs (list "ssh-key" $step.sshKey true) -}}
{{- $pairs = append $pairs (list "known-hosts" $step.knownHosts false) -}}
{{- else if eq $step.kind "render" -}}
{{- $pairs = append $pairs (list "template" $step.template false) -}}
{{- range $i, $v := $step.values | default list -}}
{{- $pairs = append $pairs (list (printf "values-%d" $i) $v false) -}}
{{- end -}}
{{- end -}}
{{- $refs := list -}}
{{- range $pairs -}}
{{- $purpose := index . 0 -}}
{{- $ref := index . 1 -}}
{{- $secretOnly := index . 2 -}}
{{- if $ref -}}
{{- $where := printf "initkit: step %q (%s) %s" $step.name $step.kind $purpose -}}
{{- if not (kindIs "map" $ref) -}}
{{- fail (printf "%s must be a reference {secret: NAME, key: KEY}%s, never a literal value" $where ($secretOnly | ternary "" " or {configMap: NAME, key: KEY}")) -}}
{{- end -}}
{{- if and $secretOnly (not $ref.secret) -}}
{{- fail (printf "%s must come from a Secret: {secret: NAME, key: KEY}" $where) -}}
{{- end -}}
{{- if and $ref.secret $ref.configMap -}}
{{- fail (printf "%s: set either secret or configMap, not both" $where) -}}
{{- end -}}
{{- if not (or $ref.secret $ref.configMap) -}}
{{- fail (printf "%s: set secret or configMap" $where) -}}
{{- end -}}
{{- $key := required (printf "%s: key is required" $where) $ref.key -}}
{{- $dir := printf "/var/run/initkit/%s" $purpose -}}
{{- $entry := dict "purpose" $purpose "volume" (printf "%s-%s" $step.name $purpose) "dir" $dir "path" (printf "%s/%s" $dir $key) "key" $key -}}
{{- if $ref.secret -}}
{{- $_ := set $entry "secret" (tpl $ref.secret $.context) -}}
{{- else -}}
{{- $_ := set $entry "configMap" (tpl $ref.configMap $.context) -}}
{{- end -}}
{{- $refs = append $refs $entry -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "refs" $refs) -}}
{{- end -}}
