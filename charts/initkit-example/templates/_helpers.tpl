{{/*
initkit-example.name: the chart name (nameOverride wins), at most 63 characters.
Usage: {{ include "initkit-example.name" . }}
*/}}
{{- define "initkit-example.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
initkit-example.fullname: release-qualified name of the resources, at most 63 characters.
Usage: {{ include "initkit-example.fullname" . }}
*/}}
{{- define "initkit-example.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "initkit-example.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
initkit-example.selectorLabels: labels that select the app's pods.
Usage: {{- include "initkit-example.selectorLabels" . | nindent 4 }}
*/}}
{{- define "initkit-example.selectorLabels" -}}
app.kubernetes.io/name: {{ include "initkit-example.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
initkit-example.labels: the common labels of every resource.
Usage: {{- include "initkit-example.labels" . | nindent 4 }}
*/}}
{{- define "initkit-example.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "initkit-example.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
initkit-example.appImage: the app image reference (global.imageRegistry wins; a digest replaces the tag).
Usage: image: {{ include "initkit-example.appImage" . | quote }}
*/}}
{{- define "initkit-example.appImage" -}}
{{- $image := .Values.app.image -}}
{{- $registry := .Values.global.imageRegistry | default $image.registry -}}
{{- $ref := $image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $ref $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref ($image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}
{{- end -}}

{{/*
initkit-example.podSpec: the app's pod spec: initkit's init containers, volumes and
pull secrets (one include each, next to the app's own), then the app container.
Security contexts go through initkit.adaptSecurityContext (OpenShift's restricted SCC
assigns the uid/gid when global.compatibility.openshift.adaptSecurityContext says so).
Usage: {{- include "initkit-example.podSpec" . | nindent 6 }}
*/}}
{{- define "initkit-example.podSpec" -}}
{{- $initkit := dict "values" .Values.initkit "context" $ -}}
{{ include "initkit.podServiceAccount" $initkit }}
enableServiceLinks: false
{{- with include "initkit.adaptSecurityContext" (dict "securityContext" .Values.podSecurityContext "context" $) }}
securityContext:
  {{- . | nindent 2 }}
{{- end }}
{{- with include "initkit.imagePullSecrets" $initkit }}
imagePullSecrets:
  {{- . | nindent 2 }}
{{- end }}
{{- with include "initkit.initContainers" $initkit }}
initContainers:
  {{- . | nindent 2 }}
{{- end }}
{{- with include "initkit.volumes" $initkit }}
volumes:
  {{- . | nindent 2 }}
{{- end }}
containers:
  - name: myapp
    image: {{ include "initkit-example.appImage" . | quote }}
    imagePullPolicy: {{ .Values.app.image.pullPolicy }}
    {{- with .Values.app.command }}
    command:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.app.env }}
    env:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with include "initkit.adaptSecurityContext" (dict "securityContext" .Values.app.securityContext "context" $) }}
    securityContext:
      {{- . | nindent 6 }}
    {{- end }}
    {{- with .Values.app.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.app.volumeMounts }}
    volumeMounts:
      {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end -}}
