{{/*
initkit.container: one init container for one step (a step as returned by initkit.steps).
The kind's own template (templates/_step-<kind>.tpl) builds its arguments and mounts
(and a restartPolicy: Always for a native sidecar, and the pod volumes of its own source
that initkit.volumes renders, such as copy's image volume);
this one adds what every step has: global options, image, env, securityContext,
resources and the read-only mounts of its Secret/ConfigMap files.
Usage:
  {{- include "initkit.container" (dict "values" .Values.initkit "context" $ "step" $step) }}
*/}}
{{- define "initkit.container" -}}
{{- include "initkit.validate" . -}}
{{- $ctx := .context -}}
{{- $ik := .values -}}
{{- $step := .step -}}
{{- $kind := $step.kind -}}
{{- $where := printf "initkit: step %q (%s)" $step.name $kind -}}
{{- $refs := (include "initkit.refs" (dict "step" $step "context" $ctx) | fromYaml).refs -}}
{{- $file := dict -}}
{{- range $refs }}{{ $_ := set $file .purpose .path }}{{ end -}}
{{- $own := include (printf "initkit.step.%s" $kind) (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml -}}
{{- $args := list -}}
{{- with $ik.logFormat }}{{ $args = concat $args (list "--log-format" .) }}{{ end -}}
{{- if $ik.quiet }}{{ $args = append $args "--quiet" }}{{ end -}}
{{- if $ik.debug }}{{ $args = append $args "--debug" }}{{ end -}}
{{- $args = concat $args (list $kind) ($own.args | default list) ($step.extraArgs | default list) -}}
{{- $mounts := $own.mounts | default list -}}
{{- range $refs -}}
{{- if .file -}}
{{- $mounts = append $mounts (dict "name" .volume "mountPath" .path "subPath" .key "readOnly" true) -}}
{{- else -}}
{{- $mounts = append $mounts (dict "name" .volume "mountPath" .dir "readOnly" true) -}}
{{- end -}}
{{- end -}}
{{- $mounts = concat $mounts ($step.volumeMounts | default list) -}}
{{- $env := concat ((include "initkit.tplTree" (dict "value" ($ik.env | default list) "context" $ctx "where" "env") | fromYaml).value) ($step.env | default list) -}}
{{- if include "initkit.usesDownwardAPI" (dict "values" $ik "step" $step) }}{{ $env = concat (include "initkit.downwardEnv" $ctx | fromYamlArray) $env }}{{ end -}}
{{- $pullPolicy := (($step.image | default dict).pullPolicy | default (($ik.image | default dict).pullPolicy | default "IfNotPresent")) -}}
{{- $container := dict "name" $step.name "image" (include "initkit.image" (dict "values" $ik "context" $ctx "step" $step)) "imagePullPolicy" $pullPolicy -}}
{{- with $ik.command }}{{ $_ := set $container "command" . }}{{ end -}}
{{- $_ := set $container "args" $args -}}
{{- with $env }}{{ $_ := set $container "env" . }}{{ end -}}
{{- with (include "initkit.securityContext" (dict "values" $ik "context" $ctx "step" $step) | fromYaml) }}{{ $_ := set $container "securityContext" . }}{{ end -}}
{{- $resources := hasKey $step "resources" | ternary $step.resources $ik.resources -}}
{{- with $resources }}{{ $_ := set $container "resources" . }}{{ end -}}
{{- with $mounts }}{{ $_ := set $container "volumeMounts" . }}{{ end -}}
{{- with $own.restartPolicy }}{{ $_ := set $container "restartPolicy" . }}{{ end -}}
{{- toYaml $container -}}
{{- end -}}

{{/*
initkit.initContainers: the init containers of all enabled steps, by order, as a YAML
list (no key). Put it under your pod's initContainers, next to your own.
Usage:
  initContainers:
    {{- include "initkit.initContainers" (dict "values" .Values.initkit "context" $) | nindent 4 }}
*/}}
{{- define "initkit.initContainers" -}}
{{- include "initkit.validate" . -}}
{{- include "initkit.kubeVersion" .context -}}
{{- $args := . -}}
{{- $containers := list -}}
{{- range (include "initkit.steps" . | fromYaml).steps -}}
{{- $containers = append $containers (include "initkit.container" (dict "values" $args.values "context" $args.context "step" .) | fromYaml) -}}
{{- end -}}
{{- with $containers }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
initkit.volumes: the pod volumes the init containers need (the configuration's
`volumes`, then one Secret/ConfigMap volume per referenced file), as a YAML list
(no key). Put it under your pod's volumes, after your own.
Usage:
  volumes:
    - name: my-own-volume
      emptyDir: {}
    {{- include "initkit.volumes" (dict "values" .Values.initkit "context" $) | nindent 4 }}
*/}}
{{- define "initkit.volumes" -}}
{{- include "initkit.validate" . -}}
{{- $ctx := .context -}}
{{- $mode := .values.fileMode | default 292 | int -}}
{{- $volumes := (include "initkit.tplTree" (dict "value" (.values.volumes | default list) "context" $ctx "where" "volumes") | fromYaml).value -}}
{{- range $step := (include "initkit.steps" . | fromYaml).steps -}}
{{- if has $step.kind (list "copy") -}}
{{- $where := printf "initkit: step %q (%s)" $step.name $step.kind -}}
{{- $volumes = concat $volumes ((include (printf "initkit.step.%s" $step.kind) (dict "step" $step "file" dict "where" $where "context" $ctx "fileMode" $mode) | fromYaml).volumes | default list) -}}
{{- end -}}
{{- range (include "initkit.refs" (dict "step" $step "context" $ctx) | fromYaml).refs -}}
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
