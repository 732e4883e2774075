{{/*
initkit.container: one init container for one step (a step as returned by initkit.steps).
Usage:
  {{- include "initkit.container" (dict "step" $step "context" $) }}
*/}}
{{- define "initkit.container" -}}
{{- $ctx := .context -}}
{{- $ik := $ctx.Values.initkit | default dict -}}
{{- $step := .step -}}
{{- $kind := $step.kind -}}
{{- $where := printf "initkit: step %q (%s)" $step.name $kind -}}
{{- $refs := (include "initkit.refs" (dict "step" $step "context" $ctx) | fromYaml).refs -}}
{{- $file := dict -}}
{{- range $refs }}{{ $_ := set $file .purpose .path }}{{ end -}}
{{- $mounts := list -}}
{{- $args := list -}}
{{- with $ik.logFormat }}{{ $args = concat $args (list "--log-format" .) }}{{ end -}}
{{- if $ik.quiet }}{{ $args = append $args "--quiet" }}{{ end -}}
{{- if $ik.debug }}{{ $args = append $args "--debug" }}{{ end -}}
{{- $args = append $args $kind -}}
{{- if eq $kind "wait-for" -}}
{{- $targets := required (printf "%s: targets is required" $where) $step.targets -}}
{{- range $targets -}}
{{- if not (kindIs "string" .) }}{{ fail (printf "%s: target %v must be a string such as dns:NAME or tcp:HOST:PORT" $where .) }}{{ end -}}
{{- $args = append $args . -}}
{{- end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- with $step.interval }}{{ $args = concat $args (list "--interval" (include "initkit.duration" .)) }}{{ end -}}
{{- with $step.dnsServer }}{{ $args = concat $args (list "--dns-server" .) }}{{ end -}}
{{- else if eq $kind "register" -}}
{{- $args = append $args (required (printf "%s: url is required" $where) $step.url) -}}
{{- with $step.method }}{{ $args = concat $args (list "--method" .) }}{{ end -}}
{{- if and $step.data $step.json }}{{ fail (printf "%s: set either data or json, not both" $where) }}{{ end -}}
{{- with $step.data }}{{ $args = concat $args (list "--data" .) }}{{ end -}}
{{- with $step.json }}{{ $args = concat $args (list "--json" (kindIs "string" . | ternary . (toJson .))) }}{{ end -}}
{{- range $step.headers | default list }}{{ $args = concat $args (list "--header" .) }}{{ end -}}
{{- with $file.token }}{{ $args = concat $args (list "--token-file" .) }}{{ end -}}
{{- with $file.ca }}{{ $args = concat $args (list "--ca-file" .) }}{{ end -}}
{{- with $step.attempts }}{{ $args = concat $args (list "--attempts" (toString .)) }}{{ end -}}
{{- with $step.timeout }}{{ $args = concat $args (list "--timeout" (include "initkit.duration" .)) }}{{ end -}}
{{- else if eq $kind "sleep" -}}
{{- $args = append $args (include "initkit.duration" (required (printf "%s: duration is required" $where) $step.duration)) -}}
{{- else -}}
{{- /* git-clone and render write into a pod volume */ -}}
{{- $volume := required (printf "%s: volume.name is required (the pod volume it writes into)" $where) (dig "name" "" ($step.volume | default dict)) -}}
{{- $mountPath := required (printf "%s: volume.mountPath is required" $where) (dig "mountPath" "" ($step.volume | default dict)) -}}
{{- $mounts = append $mounts (dict "name" $volume "mountPath" $mountPath) -}}
{{- $dest := $step.dest | default "" -}}
{{- if eq $kind "git-clone" -}}
{{- $dest = $dest | default $mountPath -}}
{{- $args = append $args (required (printf "%s: repo is required" $where) $step.repo) -}}
{{- else -}}
{{- $dest = required (printf "%s: dest is required (the file to write under %s)" $where $mountPath) $dest -}}
{{- $args = append $args (required (printf "%s: template is required" $where) $file.template) -}}
{{- end -}}
{{- if not (or (eq $dest $mountPath) (hasPrefix (printf "%s/" (trimSuffix "/" $mountPath)) $dest)) -}}
{{- fail (printf "%s: dest %q must be %s or below it (the root filesystem is read-only)" $where $dest $mountPath) -}}
{{- end -}}
{{- $args = append $args $dest -}}
{{- if eq $kind "git-clone" -}}
{{- with $step.ref }}{{ $args = concat $args (list "--ref" .) }}{{ end -}}
{{- with $step.depth }}{{ $args = concat $args (list "--depth" (toString .)) }}{{ end -}}
{{- if $step.submodules }}{{ $args = append $args "--submodules" }}{{ end -}}
{{- with $step.username }}{{ $args = concat $args (list "--username" .) }}{{ end -}}
{{- with $file.password }}{{ $args = concat $args (list "--password-file" .) }}{{ end -}}
{{- if and $file.password (not $step.username) }}{{ fail (printf "%s: password needs a username" $where) }}{{ end -}}
{{- with (index $file "ssh-key") }}{{ $args = concat $args (list "--ssh-key-file" .) }}{{ end -}}
{{- with (index $file "known-hosts") }}{{ $args = concat $args (list "--known-hosts-file" .) }}{{ end -}}
{{- if and (index $file "ssh-key") (not (index $file "known-hosts")) }}{{ fail (printf "%s: sshKey needs knownHosts (host keys are always checked)" $where) }}{{ end -}}
{{- else -}}
{{- range $i, $v := $step.values | default list }}{{ $args = concat $args (list "--values" (index $file (printf "values-%d" $i))) }}{{ end -}}
{{- $set := $step.set | default dict -}}
{{- range $key := keys $set | sortAlpha }}{{ $args = concat $args (list "--set" (printf "%s=%v" $key (index $set $key))) }}{{ end -}}
{{- with $step.mode }}{{ $args = concat $args (list "--mode" (toString .)) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $args = concat $args ($step.extraArgs | default list) -}}
{{- range $refs }}{{ $mounts = append $mounts (dict "name" .volume "mountPath" .dir "readOnly" true) }}{{ end -}}
{{- $mounts = concat $mounts ($step.volumeMounts | default list) -}}
{{- $env := concat (include "initkit.downwardEnv" $ctx | fromYamlArray) ($ik.env | default list) ($step.env | default list) -}}
{{- $container := dict "name" $step.name "image" (include "initkit.image" $ctx) "imagePullPolicy" (($ik.image | default dict).pullPolicy | default "IfNotPresent") -}}
{{- with $ik.command }}{{ $_ := set $container "command" . }}{{ end -}}
{{- $_ := set $container "args" $args -}}
{{- $_ := set $container "env" $env -}}
{{- $_ := set $container "securityContext" (include "initkit.securityContext" (dict "step" $step "context" $ctx) | fromYaml) -}}
{{- $resources := hasKey $step "resources" | ternary $step.resources $ik.resources -}}
{{- with $resources }}{{ $_ := set $container "resources" . }}{{ end -}}
{{- with $mounts }}{{ $_ := set $container "volumeMounts" . }}{{ end -}}
{{- toYaml $container -}}
{{- end -}}

{{/*
initkit.initContainers: the init containers of all enabled steps, in order, as a YAML
list (no key). Put it under your pod's initContainers.
Usage:
  initContainers:
    {{- include "initkit.initContainers" . | nindent 4 }}
*/}}
{{- define "initkit.initContainers" -}}
{{- $ctx := . -}}
{{- $containers := list -}}
{{- range (include "initkit.steps" . | fromYaml).steps -}}
{{- $containers = append $containers (include "initkit.container" (dict "step" . "context" $ctx) | fromYaml) -}}
{{- end -}}
{{- with $containers }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
initkit.volumes: the pod volumes the init containers need (initkit.volumes values,
then one Secret/ConfigMap volume per referenced file), as a YAML list (no key).
Put it under your pod's volumes.
Usage:
  volumes:
    {{- include "initkit.volumes" . | nindent 4 }}
*/}}
{{- define "initkit.volumes" -}}
{{- $ctx := . -}}
{{- $ik := .Values.initkit | default dict -}}
{{- $mode := $ik.fileMode | default 292 | int -}}
{{- $volumes := $ik.volumes | default list -}}
{{- range (include "initkit.steps" . | fromYaml).steps -}}
{{- range (include "initkit.refs" (dict "step" . "context" $ctx) | fromYaml).refs -}}
{{- $items := list (dict "key" .key "path" .key) -}}
{{- if .secret -}}
{{- $volumes = append $volumes (dict "name" .volume "secret" (dict "secretName" .secret "items" $items "defaultMode" $mode)) -}}
{{- else -}}
{{- $volumes = append $volumes (dict "name" .volume "configMap" (dict "name" .configMap "items" $items "defaultMode" $mode)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- with $volumes }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
initkit.pod: the `initContainers:` and `volumes:` keys of a pod spec, for pods whose
only volumes are initkit's (list your app's extra volumes in initkit.volumes).
Usage:
  spec:
    {{- include "initkit.pod" . | nindent 4 }}
    containers: ...
*/}}
{{- define "initkit.pod" -}}
{{- $containers := include "initkit.initContainers" . -}}
{{- $volumes := include "initkit.volumes" . -}}
{{- if $containers }}
initContainers:
{{- $containers | nindent 2 }}
{{- end }}
{{- if $volumes }}
volumes:
{{- $volumes | nindent 2 }}
{{- end }}
{{- end -}}
