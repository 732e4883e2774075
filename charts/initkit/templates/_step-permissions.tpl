{{/*
initkit.step.permissions: the CLI arguments of a permissions step, as YAML {args: [...], mounts: [...]}
(its mounts are the step's own `volumeMounts`, which initkit.container adds). paths go
through tpl and default to the mountPaths of those mounts; each must be the mountPath
of a writable mount or below it (the root filesystem is read-only, and the image's own
files are not the step's to change). owner is "UID", "UID:GID" or ":GID", or uid and gid
as numbers; mode is chmod's (symbolic or octal), a string.
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
{{- $paths := $step.paths | default list -}}
{{- if not $paths -}}
{{- range $mounts }}{{ if not .readOnly }}{{ $paths = append $paths .mountPath }}{{ end }}{{ end -}}
{{- end -}}
{{- range $path := $paths -}}
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
{{- end -}}
{{- if not $paths }}{{ fail (printf "%s: no path to fix: its volumeMounts are all readOnly" $where) }}{{ end -}}
{{- $args := $paths -}}
{{- with $step.owner }}{{ $args = concat $args (list "--owner" (toString .)) }}{{ end -}}
{{- if hasKey $step "mode" -}}
{{- if not (kindIs "string" $step.mode) -}}
{{- fail (printf "%s: mode must be a string: quote an octal mode (mode: \"0750\"), YAML reads 0750 as the number 488" $where) -}}
{{- end -}}
{{- $args = concat $args (list "--mode" $step.mode) -}}
{{- end -}}
{{- if not (or $step.owner (hasKey $step "mode")) -}}
{{- fail (printf "%s: nothing to do: set owner (or uid/gid), mode, or both (paths: %s)" $where (join ", " $paths)) -}}
{{- end -}}
{{- toYaml (dict "args" $args "mounts" (list)) -}}
{{- end -}}

{{/*
initkit.permissions.groups: the paths of a permissions step grouped by their (owner, mode),
in the order first given, as YAML {groups: [{paths, owner, mode?}]}: one CLI invocation
(one init container) each, since one `initkit permissions` takes one owner and one mode.
A path is a string or {path, owner, mode}; what an entry leaves out is the step's own
owner (or uid/gid) and mode. Without paths: one group, the default paths.
Usage (from initkit.steps):
  {{- $groups := (include "initkit.permissions.groups" (dict "step" $step "where" $where) | fromYaml).groups }}
*/}}
{{- define "initkit.permissions.groups" -}}
{{- $step := .step -}}
{{- $where := .where -}}
{{- $owner := "" -}}
{{- if hasKey $step "owner" -}}
{{- if or (hasKey $step "uid") (hasKey $step "gid") }}{{ fail (printf "%s: set owner or uid/gid, not both" $where) }}{{ end -}}
{{- $owner = include "initkit.permissions.owner" $step.owner -}}
{{- else if or (hasKey $step "uid") (hasKey $step "gid") -}}
{{- if hasKey $step "uid" }}{{ $owner = printf "%d" (int64 $step.uid) }}{{ end -}}
{{- if hasKey $step "gid" }}{{ $owner = printf "%s:%d" $owner (int64 $step.gid) }}{{ end -}}
{{- end -}}
{{- $default := dict "owner" $owner -}}
{{- if hasKey $step "mode" }}{{ $_ := set $default "mode" $step.mode }}{{ end -}}
{{- $groups := list -}}
{{- range $step.paths | default list -}}
{{- $group := deepCopy $default -}}
{{- $path := . -}}
{{- if kindIs "map" . -}}
{{- $path = required (printf "%s: each entry of paths is a path or {path, owner, mode}; path is required" $where) .path -}}
{{- if hasKey . "owner" }}{{ $_ := set $group "owner" (include "initkit.permissions.owner" .owner) }}{{ end -}}
{{- if hasKey . "mode" }}{{ $_ := set $group "mode" .mode }}{{ end -}}
{{- end -}}
{{- $found := false -}}
{{- range $groups -}}
{{- if and (not $found) (eq (toJson (omit . "paths")) (toJson $group)) -}}
{{- $_ := set . "paths" (append .paths (toString $path)) -}}
{{- $found = true -}}
{{- end -}}
{{- end -}}
{{- if not $found }}{{ $groups = append $groups (merge (dict "paths" (list (toString $path))) $group) }}{{ end -}}
{{- end -}}
{{- if not $groups }}{{ $groups = list $default }}{{ end -}}
{{- toYaml (dict "groups" $groups) -}}
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
