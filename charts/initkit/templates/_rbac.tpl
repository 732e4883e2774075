{{/*
initkit.apiRules: what the wait-for steps' Kubernetes API targets need, as YAML
{rules: {NAMESPACE: [{apiGroup, resource}, ...]}} with "" for the pod's own namespace;
empty rules when no target is an API one. A target is `[gone:]KIND:...` with KIND job
(batch/jobs), pods and daemonset (""/pods), endpoints (discovery.k8s.io/endpointslices)
or cr (cr:GROUP/VERSION/PLURAL/[NS/]NAME: GROUP/PLURAL); `NS/` before the name or
selector is another namespace (as initkit parses it: a DNS label before the first /).
Usage:
  {{- $rules := (include "initkit.apiRules" (dict "values" .Values.initkit "context" $) | fromYaml).rules }}
*/}}
{{- define "initkit.apiRules" -}}
{{- $rules := dict -}}
{{- $label := "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" -}}
{{- range $step := (include "initkit.steps" . | fromYaml).steps -}}
{{- if eq $step.kind "wait-for" -}}
{{- range $target := $step.targets | default list -}}
{{- $body := trimPrefix "gone:" (toString $target) -}}
{{- $kind := first (splitList ":" $body) -}}
{{- $rest := trimPrefix (printf "%s:" $kind) $body -}}
{{- $ns := "" -}}
{{- $group := "" -}}
{{- $resource := "" -}}
{{- if eq $kind "cr" -}}
{{- $parts := splitList "/" (first (splitList "#" $rest)) -}}
{{- if not (has (len $parts) (list 4 5)) -}}
{{- fail (printf "initkit: step %q (wait-for) target %q: expected cr:GROUP/VERSION/PLURAL/[NS/]NAME#condition=TYPE" $step.name $target) -}}
{{- end -}}
{{- $group = index $parts 0 -}}
{{- $resource = index $parts 2 -}}
{{- if eq (len $parts) 5 }}{{ $ns = index $parts 3 }}{{ end -}}
{{- else if has $kind (list "job" "pods" "endpoints" "daemonset") -}}
{{- $head := first (splitList "/" (first (splitList "?" $rest))) -}}
{{- if and (contains "/" $rest) (regexMatch $label $head) }}{{ $ns = $head }}{{ end -}}
{{- $resource = get (dict "job" "jobs" "pods" "pods" "daemonset" "pods" "endpoints" "endpointslices") $kind -}}
{{- $group = get (dict "job" "batch" "pods" "" "daemonset" "" "endpoints" "discovery.k8s.io") $kind -}}
{{- end -}}
{{- if $resource -}}
{{- if eq $ns $.context.Release.Namespace }}{{ $ns = "" }}{{ end -}}
{{- $list := get $rules $ns | default list -}}
{{- $rule := dict "apiGroup" $group "resource" $resource -}}
{{- if not (has $rule $list) }}{{ $_ := set $rules $ns (append $list $rule) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "rules" $rules) -}}
{{- end -}}

{{/*
initkit.serviceAccountName: the ServiceAccount the pod runs as when a wait-for step waits
on the Kubernetes API: rbac.serviceAccountName, else <release>-initkit.
Usage:
  {{ include "initkit.serviceAccountName" (dict "values" .Values.initkit "context" $) }}
*/}}
{{- define "initkit.serviceAccountName" -}}
{{- $name := dig "serviceAccountName" "" (.values.rbac | default dict) -}}
{{- $name = include "initkit.tpl" (dict "value" $name "context" .context) -}}
{{- $name | default (printf "%s-initkit" .context.Release.Name | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/*
initkit.podServiceAccount: the pod spec's service account keys: with an API target,
`serviceAccountName` and `automountServiceAccountToken: true` (wait-for reads the token);
without one, `automountServiceAccountToken: false` only (no token in the pod). Put it in
place of your pod's own automountServiceAccountToken (and serviceAccountName).
Usage:
  spec:
    {{- include "initkit.podServiceAccount" (dict "values" .Values.initkit "context" $) | nindent 2 }}
*/}}
{{- define "initkit.podServiceAccount" -}}
{{- include "initkit.validate" . -}}
{{- if (include "initkit.apiRules" . | fromYaml).rules -}}
serviceAccountName: {{ include "initkit.serviceAccountName" . }}
automountServiceAccountToken: true
{{- else -}}
automountServiceAccountToken: false
{{- end -}}
{{- end -}}

{{/*
initkit.rbac: the ServiceAccount, Role and RoleBinding the wait-for steps' API targets
need (get, list and watch on exactly their resources, in the pod's namespace), and for a
target in another namespace (NS/) a ClusterRole with that namespace's resources, bound by
a RoleBinding in that namespace only; nothing when no target is an API one. With
rbac.create: false it renders nothing (your ServiceAccount, rbac.serviceAccountName, has
the rights). Render it from a template file of your chart (templates/initkit-rbac.yaml).
Usage:
  {{- include "initkit.rbac" (dict "values" .Values.initkit "context" $) }}
*/}}
{{- define "initkit.rbac" -}}
{{- include "initkit.validate" . -}}
{{- $rules := (include "initkit.apiRules" . | fromYaml).rules -}}
{{- if and $rules (dig "create" true (.values.rbac | default dict)) -}}
{{- $ctx := .context -}}
{{- $name := include "initkit.serviceAccountName" . -}}
{{- $own := $ctx.Release.Namespace -}}
{{- $labels := dict "app.kubernetes.io/managed-by" $ctx.Release.Service "app.kubernetes.io/instance" $ctx.Release.Name "app.kubernetes.io/component" "initkit" -}}
{{- $subject := list (dict "kind" "ServiceAccount" "name" $name "namespace" $own) -}}
{{- $docs := list (dict "apiVersion" "v1" "kind" "ServiceAccount" "metadata" (dict "name" $name "namespace" $own "labels" $labels) "automountServiceAccountToken" false) -}}
{{- range $ns := keys $rules | sortAlpha -}}
{{- $byGroup := dict -}}
{{- range index $rules $ns }}{{ $_ := set $byGroup .apiGroup (append (get $byGroup .apiGroup | default list) .resource | uniq | sortAlpha) }}{{ end -}}
{{- $policy := list -}}
{{- range $group := keys $byGroup | sortAlpha -}}
{{- $policy = append $policy (dict "apiGroups" (list $group) "resources" (get $byGroup $group) "verbs" (list "get" "list" "watch")) -}}
{{- end -}}
{{- if eq $ns "" -}}
{{- $docs = append $docs (dict "apiVersion" "rbac.authorization.k8s.io/v1" "kind" "Role" "metadata" (dict "name" $name "namespace" $own "labels" $labels) "rules" $policy) -}}
{{- $docs = append $docs (dict "apiVersion" "rbac.authorization.k8s.io/v1" "kind" "RoleBinding" "metadata" (dict "name" $name "namespace" $own "labels" $labels) "roleRef" (dict "apiGroup" "rbac.authorization.k8s.io" "kind" "Role" "name" $name) "subjects" $subject) -}}
{{- else -}}
{{- $cluster := printf "%s-%s-%s" $own $name $ns | trunc 253 -}}
{{- $docs = append $docs (dict "apiVersion" "rbac.authorization.k8s.io/v1" "kind" "ClusterRole" "metadata" (dict "name" $cluster "labels" $labels) "rules" $policy) -}}
{{- $docs = append $docs (dict "apiVersion" "rbac.authorization.k8s.io/v1" "kind" "RoleBinding" "metadata" (dict "name" (printf "%s-%s" $own $name | trunc 253) "namespace" $ns "labels" $labels) "roleRef" (dict "apiGroup" "rbac.authorization.k8s.io" "kind" "ClusterRole" "name" $cluster) "subjects" $subject) -}}
{{- end -}}
{{- end -}}
{{- range $docs }}
---
{{ toYaml . }}
{{- end -}}
{{- end -}}
{{- end -}}
