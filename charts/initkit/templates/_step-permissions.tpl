{{/*
initkit.step.permissions: the CLI arguments of a permissions step, as YAML {args: [...], mounts: [...]}
(its mounts are the step's own `volumeMounts`, which initkit.container adds), one container
for every path. paths go through tpl and default to the mountPaths of those mounts; each
must be the mountPath of a writable mount or below it (the root filesystem is read-only,
and the image's own files are not the step's to change). A plain path takes the step's
owner and mode (positional PATHs); an entry {path, owner, mode} becomes
`--path PATH OWNER MODE`, `-` for what it leaves to the step's. owner is "UID",
"UID:GID" or ":GID", or uid and gid as numbers; mode is chmod's (symbolic or octal), a string.
Replaces Bitnami's volumePermissions: chown -R 1001:1001 /data && chmod -R g+rwX /data
Usage (from initkit.container):
  {{- $out := include "initkit.step.permissions" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.permissions" -}}
{{- $step := .step -}}
{{- $where := .where -}}
{{- $mounts := $step.volumeMounts | default list -}}
{{- if not $mounts -}}
{{- fail (printf "%s: volumeMounts is required (the volumes whose owner and mode it fixes)" $where) -}}
{{- end -}}
{{- $owner := "" -}}
{{- if hasKey $step "owner" -}}
{{- if or (hasKey $step "uid") (hasKey $step "gid") }}{{ fail (printf "%s: set owner or uid/gid, not both" $where) }}{{ end -}}
{{- $owner = include "initkit.permissions.owner" $step.owner -}}
{{- else if or (hasKey $step "uid") (hasKey $step "gid") -}}
{{- if hasKey $step "uid" }}{{ $owner = printf "%d" (int64 $step.uid) }}{{ end -}}
{{- if hasKey $step "gid" }}{{ $owner = printf "%s:%d" $owner (int64 $step.gid) }}{{ end -}}
{{- end -}}
{{- if hasKey $step "mode" -}}
{{- include "initkit.permissions.mode" (dict "mode" $step.mode "where" $where) -}}
{{- end -}}
{{- $entries := $step.paths | default list -}}
{{- if not $entries -}}
{{- range $mounts }}{{ if not .readOnly }}{{ $entries = append $entries .mountPath }}{{ end }}{{ end -}}
{{- end -}}
{{- if not $entries }}{{ fail (printf "%s: no path to fix: its volumeMounts are all readOnly" $where) }}{{ end -}}
{{- $plain := list -}}
{{- $own := list -}}
{{- range $entry := $entries -}}
{{- $path := $entry -}}
{{- if kindIs "map" $entry -}}
{{- $path = required (printf "%s: each entry of paths is a path or {path, owner, mode}; path is required" $where) $entry.path -}}
{{- end -}}
{{- $path = toString $path -}}
{{- if regexMatch "(^|/)\\.\\.?(/|$)" $path -}}
{{- fail (printf "%s: path %q has a . or .. component; give the path itself" $where $path) -}}
{{- end -}}
{{- $inside := false -}}
{{- range $mounts -}}
{{- $base := trimSuffix "/" .mountPath -}}
{{- if and (not .readOnly) (or (eq $path .mountPath) (eq $path $base) (hasPrefix (printf "%s/" $base) $path)) }}{{ $inside = true }}{{ end -}}
{{- end -}}
{{- if not $inside -}}
{{- fail (printf "%s: path %q must be the mountPath of one of its writable volumeMounts or below it" $where $path) -}}
{{- end -}}
{{- if kindIs "map" $entry -}}
{{- $o := hasKey $entry "owner" | ternary (include "initkit.permissions.owner" $entry.owner) "-" -}}
{{- $m := "-" -}}
{{- if hasKey $entry "mode" }}{{ include "initkit.permissions.mode" (dict "mode" $entry.mode "where" $where) }}{{ $m = $entry.mode }}{{ end -}}
{{- if and (eq $o "-") (not $owner) (eq $m "-") (not (hasKey $step "mode")) -}}
{{- fail (printf "%s: nothing to do for path %q: give it an owner or a mode, or set the step's" $where $path) -}}
{{- end -}}
{{- $own = concat $own (list "--path" $path $o $m) -}}
{{- else -}}
{{- $plain = append $plain $path -}}
{{- end -}}
{{- end -}}
{{- if and $plain (not (or $owner (hasKey $step "mode"))) -}}
{{- fail (printf "%s: nothing to do: set owner (or uid/gid), mode, or both (paths: %s)" $where (join ", " $plain)) -}}
{{- end -}}
{{- $args := $plain -}}
{{- with $owner }}{{ $args = concat $args (list "--owner" .) }}{{ end -}}
{{- if hasKey $step "mode" }}{{ $args = concat $args (list "--mode" $step.mode) }}{{ end -}}
{{- toYaml (dict "args" (concat $args $own) "mounts" (list)) -}}
{{- end -}}

{{/*
initkit.permissions.mode: fails unless a permissions mode is a string (YAML reads 0750 as
the number 488); renders nothing.
Usage:
  {{- include "initkit.permissions.mode" (dict "mode" $step.mode "where" $where) }}
*/}}
{{- define "initkit.permissions.mode" -}}
{{- if not (kindIs "string" .mode) -}}
{{- fail (printf "%s: mode must be a string: quote an octal mode (mode: \"0750\"), YAML reads 0750 as the number %v" .where .mode) -}}
{{- end -}}
{{- end -}}

{{/*
initkit.permissions.owner: an owner value as the CLI takes it: a string as given, a number as a uid.
Usage:
  {{ include "initkit.permissions.owner" $step.owner }}
*/}}
{{- define "initkit.permissions.owner" -}}
{{- kindIs "string" . | ternary . (printf "%d" (int64 .)) -}}
{{- end -}}

{{/*
initkit.permissionsSecurityContext: the securityContext of a permissions step. Not the
hardened default: it runs as root (uid 0) to chown other users' files, with every
capability dropped but CHOWN, FOWNER and DAC_OVERRIDE (Pod Security baseline's; DAC_OVERRIDE
walks the 0700 directories an app leaves, such as PostgreSQL's data directory), no privilege escalation and a read-only root
filesystem; the configuration's other keys (seccompProfile, ...) are kept, and the step's
own securityContext keys go on top. OpenShift's restricted SCC refuses uid 0 and added
capabilities: under adaptSecurityContext (force, or auto on OpenShift) rendering fails
unless the step sets openshiftAllowRoot: true (its service account has an SCC that allows
them); the uid is then kept, not dropped as for the other steps.
Usage (from initkit.securityContext):
  {{- include "initkit.permissionsSecurityContext" (dict "values" .Values.initkit "context" $ "step" $step) }}
*/}}
{{- define "initkit.permissionsSecurityContext" -}}
{{- $step := .step -}}
{{- if and (include "initkit.openshift" .context) (not $step.openshiftAllowRoot) -}}
{{- fail (printf "initkit: step %q (permissions) runs as root with CAP_CHOWN, CAP_FOWNER and CAP_DAC_OVERRIDE, which OpenShift's restricted SCC refuses (global.compatibility.openshift.adaptSecurityContext is force, or auto on OpenShift): grant its service account an SCC that allows uid 0 and those capabilities and set openshiftAllowRoot: true on the step, or set enabled: false (OpenShift gives volumes the pod's fsGroup)" $step.name) -}}
{{- end -}}
{{- $sc := deepCopy (.values.securityContext | default dict) -}}
{{- range $step.extraCapabilities | default list -}}
{{- if not (has . (list "DAC_READ_SEARCH" "DAC_OVERRIDE")) -}}
{{- fail (printf "initkit: step %q (permissions) extraCapabilities: %v is not one it may add; use DAC_READ_SEARCH or DAC_OVERRIDE (DAC_OVERRIDE is already in the default set; DAC_READ_SEARCH is outside Pod Security baseline)" $step.name .) -}}
{{- end -}}
{{- end -}}
{{- $add := concat (list "CHOWN" "FOWNER" "DAC_OVERRIDE") ($step.extraCapabilities | default list) | uniq -}}
{{- $_ := set $sc "runAsUser" 0 -}}
{{- $_ := set $sc "runAsGroup" 0 -}}
{{- $_ := set $sc "runAsNonRoot" false -}}
{{- $_ := set $sc "allowPrivilegeEscalation" false -}}
{{- $_ := set $sc "readOnlyRootFilesystem" true -}}
{{- $_ := set $sc "privileged" false -}}
{{- $_ := set $sc "capabilities" (dict "drop" (list "ALL") "add" $add) -}}
{{- range $key, $value := ($step.securityContext | default dict) }}{{ $_ := set $sc $key $value }}{{ end -}}
{{- toYaml $sc -}}
{{- end -}}
