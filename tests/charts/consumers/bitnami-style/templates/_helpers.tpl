{{/*
Helpers of this chart, in the manner of Bitnami's `common` chart (written for this test,
not copied): names and labels, an image reference, and pull secrets merged from a list of
image blocks into one `imagePullSecrets:` key.
*/}}

{{- define "bstyle.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bstyle.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
bstyle.images.image: REGISTRY/REPOSITORY:TAG (or @DIGEST) of an image block; global.imageRegistry wins.
Usage: {{ include "bstyle.images.image" (dict "imageRoot" .Values.image "global" .Values.global) }}
*/}}
{{- define "bstyle.images.image" -}}
{{- $registry := .imageRoot.registry | default "" -}}
{{- with (.global | default dict).imageRegistry }}{{ $registry = . }}{{ end -}}
{{- $ref := .imageRoot.repository -}}
{{- with $registry }}{{ $ref = printf "%s/%s" . $ref }}{{ end -}}
{{- if .imageRoot.digest -}}
{{- printf "%s@%s" $ref .imageRoot.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (toString .imageRoot.tag) -}}
{{- end -}}
{{- end -}}

{{/*
bstyle.images.renderPullSecrets: one `imagePullSecrets:` key with the pull secrets of every
image block given (names or {name: ...}, through tpl) and global.imagePullSecrets, without
duplicates; nothing when there are none.
Usage: {{ include "bstyle.images.renderPullSecrets" (dict "images" (list .Values.image) "context" $) }}
*/}}
{{- define "bstyle.images.renderPullSecrets" -}}
{{- $ctx := .context -}}
{{- $names := list -}}
{{- $all := (($ctx.Values.global | default dict).imagePullSecrets | default list) -}}
{{- range .images }}{{ $all = concat $all (.pullSecrets | default list) }}{{ end -}}
{{- range $all -}}
{{- $name := . -}}
{{- if kindIs "map" . }}{{ $name = .name }}{{ end -}}
{{- $names = append $names (tpl (toString $name) $ctx) -}}
{{- end -}}
{{- with ($names | uniq) }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
