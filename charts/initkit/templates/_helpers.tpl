{{/*
initkit library chart: shared helpers.

Every public template takes an explicit dict, as Bitnami's common chart does:
  (dict "values" .Values.initkit "context" $)
`values` is the values block of one initkit dependency (its name, or its alias),
`context` the parent chart's root context. So any dependency name or alias works,
and one chart can hold several initkit configurations (one dependency entry each).
*/}}

{{/*
initkit.validate: fails with the usage unless the argument is (dict "values" V "context" $)
with V an initkit values block; renders nothing.
Usage:
  {{- include "initkit.validate" . }}
*/}}
{{- define "initkit.validate" -}}
{{- $usage := "(dict \"values\" .Values.initkit \"context\" $), with the name or alias of your initkit dependency in place of initkit" -}}
{{- if not (kindIs "map" .) -}}
{{- fail (printf "initkit: the initkit templates take %s" $usage) -}}
{{- end -}}
{{- if not (hasKey . "context") -}}
{{- fail (printf "initkit: the initkit templates take %s; got the root context or a dict without \"context\"" $usage) -}}
{{- end -}}
{{- if not (kindIs "map" .values) -}}
{{- fail (printf "initkit: no initkit configuration found: \"values\" is empty; pass %s, and check that Chart.yaml lists that dependency and that `helm dependency build` ran" $usage) -}}
{{- end -}}
{{- if not (and (hasKey .values "image") (hasKey .values "steps")) -}}
{{- fail (printf "initkit: \"values\" is not an initkit configuration (no image and steps keys, which the initkit dependency's defaults always have); pass %s" $usage) -}}
{{- end -}}
{{- end -}}

{{/*
initkit.tpl: a value a Helm user may template, rendered with `tpl` against the parent's
context when it contains "{{"; other values are returned as strings, unchanged.
initkit's own runtime Jinja in these values is written escaped: {{ "{{ pod.ip }}" }}.
Usage:
  {{ include "initkit.tpl" (dict "value" $step.repo "context" $ctx) }}
*/}}
{{- define "initkit.tpl" -}}
{{- $value := toString .value -}}
{{- if contains "{{" $value -}}
{{- tpl $value .context -}}
{{- else -}}
{{- $value -}}
{{- end -}}
{{- end -}}

{{/*
initkit.tplTree: a values tree (map, list or scalar) with every string that holds "{{"
rendered by initkit.tpl, as YAML {value: ...}; other values are kept as they are. `skip`
lists dotted paths (below the tree) kept as written: initkit's runtime Jinja (register's
data and json). A templated value under a key Kubernetes or the CLI reads as a number
(runAsUser, uid, depth, ...) or a boolean (enabled, readOnly, runAsNonRoot, ...) is
converted to one, and fails naming `where` and the path when it is not one.
Usage:
  {{- $step = (include "initkit.tplTree" (dict "value" $step "context" $ "where" "steps.web" "skip" (list "data")) | fromYaml).value }}
*/}}
{{- define "initkit.tplTree" -}}
{{- $value := .value -}}
{{- $path := .path | default "" -}}
{{- $key := .key | default "" -}}
{{- if kindIs "map" $value -}}
{{- $out := dict -}}
{{- range $k, $v := $value -}}
{{- $p := (ne $path "") | ternary (printf "%s.%s" $path $k) $k -}}
{{- if has $p ($.skip | default list) -}}
{{- $_ := set $out $k $v -}}
{{- else -}}
{{- $_ := set $out $k (include "initkit.tplTree" (dict "value" $v "context" $.context "where" $.where "skip" $.skip "path" $p "key" $k) | fromYaml).value -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "value" $out) -}}
{{- else if kindIs "slice" $value -}}
{{- $out := list -}}
{{- range $i, $v := $value -}}
{{- $out = append $out (include "initkit.tplTree" (dict "value" $v "context" $.context "where" $.where "skip" $.skip "path" (printf "%s[%d]" $path $i) "key" $key) | fromYaml).value -}}
{{- end -}}
{{- toYaml (dict "value" $out) -}}
{{- else if and (kindIs "string" $value) (contains "{{" $value) -}}
{{- $text := include "initkit.tpl" (dict "value" $value "context" .context) -}}
{{- $where := printf "initkit: %s: %q gave %q" (list .where $path | compact | join ".") $value $text -}}
{{- if has $key (list "runAsUser" "runAsGroup" "fsGroup" "uid" "gid" "depth" "attempts" "stripComponents" "days" "caDays") -}}
{{- if not (regexMatch "^[0-9]+$" $text) }}{{ fail (printf "%s, which is not a whole number" $where) }}{{ end -}}
{{- toYaml (dict "value" (int64 $text)) -}}
{{- else if has $key (list "enabled" "extract" "readOnly" "runAsNonRoot" "readOnlyRootFilesystem" "allowPrivilegeEscalation" "privileged" "openshiftAllowRoot" "slim" "optional" "exact" "overwrite" "pod") -}}
{{- if not (has $text (list "true" "false")) }}{{ fail (printf "%s, which is not true or false" $where) }}{{ end -}}
{{- toYaml (dict "value" (eq $text "true")) -}}
{{- else -}}
{{- toYaml (dict "value" $text) -}}
{{- end -}}
{{- else -}}
{{- toYaml (dict "value" $value) -}}
{{- end -}}
{{- end -}}

{{/*
initkit.appVersion: the appVersion of the initkit chart among the parent's subcharts,
found by its annotation (Helm renames an aliased chart to its alias), else "".
Usage:
  {{ include "initkit.appVersion" $ctx }}
*/}}
{{- define "initkit.appVersion" -}}
{{- $version := "" -}}
{{- range $name, $sub := .Subcharts | default dict -}}
{{- $annotations := $sub.Chart.Annotations | default dict -}}
{{- if and (not $version) (eq (index $annotations "initkit.github.io/library" | default "") "initkit") -}}
{{- $version = $sub.Chart.AppVersion | default "" | toString -}}
{{- end -}}
{{- end -}}
{{- $version -}}
{{- end -}}

{{/*
initkit.image: the image reference of a step's container:
[global.imageRegistry or registry/]repository(:tag | @digest).

The image block of the configuration, with the step's own `image` keys set over it.
Steps that need no git or cryptography (every kind but git-clone and certs) run the slim image: the tag gets
`slimSuffix` ("-slim") and `slimDigest` pins it, unless `slim` is false. A step's own
`image.tag` or `image.digest` is used exactly as given. The tag defaults to the initkit
chart's appVersion; a digest replaces the tag (image.digest pins the full image; a slim
step without slimDigest then runs that pinned full image).
Usage:
  image: {{ include "initkit.image" (dict "values" .Values.initkit "context" $ "step" $step) | quote }}
*/}}
{{- define "initkit.image" -}}
{{- include "initkit.validate" . -}}
{{- $ctx := .context -}}
{{- $step := .step | default dict -}}
{{- $kind := $step.kind | default "" -}}
{{- $own := $step.image | default dict -}}
{{- $image := deepCopy (.values.image | default dict) -}}
{{- range $key, $value := $own }}{{ $_ := set $image $key $value }}{{ end -}}
{{- $registry := $image.registry | default "" -}}
{{- with (($ctx.Values.global | default dict).imageRegistry) }}{{ $registry = . }}{{ end -}}
{{- $ref := required "initkit: image.repository is required" $image.repository -}}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end -}}
{{- $full := has $kind (list "git-clone" "certs") -}}
{{- $slim := and (dig "slim" true $image) (not $full) (ne $kind "") -}}
{{- $suffix := $image.slimSuffix | default "" -}}
{{- $digest := $image.digest | default "" -}}
{{- if and $slim (not $own.digest) $image.slimDigest }}{{ $digest = $image.slimDigest }}{{ end -}}
{{- if $digest -}}
{{- printf "%s@%s" $ref $digest -}}
{{- else -}}
{{- $tag := $image.tag | default "" | toString -}}
{{- $tag = $tag | default (include "initkit.appVersion" $ctx) -}}
{{- $tag = required "initkit: image.tag is required (no initkit appVersion found)" $tag -}}
{{- if and $full $suffix (hasSuffix $suffix $tag) -}}
{{- fail (printf "initkit: step %q (%s) needs the full image (%s), but its tag %q is the slim one" $step.name $kind ((eq $kind "certs") | ternary "with cryptography" "with git") $tag) -}}
{{- end -}}
{{- if and $slim $suffix (not $own.tag) (not (hasSuffix $suffix $tag)) }}{{ $tag = printf "%s%s" $tag $suffix }}{{ end -}}
{{- printf "%s:%s" $ref $tag -}}
{{- end -}}
{{- end -}}

{{/*
initkit.imagePullSecrets: the pod's imagePullSecrets for the initkit images, merged with
the pod's own: `secrets` (the consumer's list, e.g. .Values.imagePullSecrets; optional),
then image.pullSecrets, then global.imagePullSecrets (names, or {name: ...}; names go
through tpl), without duplicates, as a YAML list (no key); empty when there are none.
Usage:
  {{- with include "initkit.imagePullSecrets" (dict "values" .Values.initkit "context" $ "secrets" .Values.imagePullSecrets) }}
  imagePullSecrets:
    {{- . | nindent 4 }}
  {{- end }}
*/}}
{{- define "initkit.imagePullSecrets" -}}
{{- include "initkit.validate" . -}}
{{- $names := list -}}
{{- $all := concat (.secrets | default list) ((.values.image | default dict).pullSecrets | default list) ((.context.Values.global | default dict).imagePullSecrets | default list) -}}
{{- range $all -}}
{{- $name := . -}}
{{- if kindIs "map" . }}{{ $name = .name | default "" }}{{ end -}}
{{- $name = include "initkit.tpl" (dict "value" $name "context" $.context) -}}
{{- if and $name (not (has $name $names)) }}{{ $names = append $names $name }}{{ end -}}
{{- end -}}
{{- $secrets := list -}}
{{- range $names }}{{ $secrets = append $secrets (dict "name" .) }}{{ end -}}
{{- with $secrets }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
initkit.renderImagePullSecrets: the pod's one `imagePullSecrets:` key with
initkit.imagePullSecrets' merged list (the consumer's `secrets` first), or nothing when
the list is empty. Put it in place of the pod's own imagePullSecrets block, never beside
it: a second key would silently replace the first.
Usage:
  spec:
    {{- include "initkit.renderImagePullSecrets" (dict "values" .Values.initkit "context" $ "secrets" .Values.imagePullSecrets) | nindent 2 }}
*/}}
{{- define "initkit.renderImagePullSecrets" -}}
{{- with include "initkit.imagePullSecrets" . -}}
imagePullSecrets:
{{ . }}
{{- end -}}
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
initkit.downwardEnv: the Downward API env (POD_IP, POD_NAME, POD_NAMESPACE, POD_UID,
NODE_NAME), as a YAML list: what render and register read (initkit.usesDownwardAPI says
which steps get it).
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
initkit.usesDownwardAPI: "true" when a step gets the Downward API env: its `downwardAPI`
(else the configuration's) is true, or auto (the default) and the step is a render or a
register (their Jinja reads pod.*; a render's template only, not merge or edit) or a certs (the pod's IP and name go into the
certificate), or its values mention POD_ or NODE_NAME, or a daemonset: target (its pod on
this node: NODE_NAME) (e.g. an env
value or an extra argument naming $POD_NAME); else "".
Usage:
  {{- if include "initkit.usesDownwardAPI" (dict "values" .Values.initkit "step" $step) }}...{{ end }}
*/}}
{{- define "initkit.usesDownwardAPI" -}}
{{- $step := .step -}}
{{- $mode := hasKey $step "downwardAPI" | ternary $step.downwardAPI (.values.downwardAPI | default "auto") | toString -}}
{{- if not (has $mode (list "auto" "true" "false")) -}}
{{- fail (printf "initkit: step %q: downwardAPI %q is unknown; use auto, true or false" $step.name $mode) -}}
{{- end -}}
{{- if eq $mode "auto" -}}
{{- $text := toYaml (omit $step "downwardAPI" "name") -}}
{{- if or (has $step.kind (list "register" "certs")) (and (eq $step.kind "render") $step.template) (contains "POD_" $text) (contains "NODE_NAME" $text) (contains "daemonset:" $text) }}true{{ end -}}
{{- else if eq $mode "true" -}}
true
{{- end -}}
{{- end -}}

{{/*
initkit.openshift: "true" when security contexts are adapted to OpenShift's restricted
SCC: global.compatibility.openshift.adaptSecurityContext is `force`, or `auto` (the
default) on a cluster that serves security.openshift.io/v1; else "".
Usage:
  {{- if include "initkit.openshift" $ctx }}...{{ end }}
*/}}
{{- define "initkit.openshift" -}}
{{- $mode := dig "compatibility" "openshift" "adaptSecurityContext" "auto" (.Values.global | default dict) -}}
{{- if not (has $mode (list "auto" "force" "disabled")) -}}
{{- fail (printf "initkit: global.compatibility.openshift.adaptSecurityContext %q is unknown; use auto, force or disabled" $mode) -}}
{{- end -}}
{{- if or (eq $mode "force") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "security.openshift.io/v1")) -}}
true
{{- end -}}
{{- end -}}

{{/*
initkit.adaptSecurityContext: a (pod or container) securityContext as YAML, without
runAsUser, runAsGroup and fsGroup when initkit.openshift says so (the restricted SCC
then assigns them from the namespace's range). Apps use it for their own contexts too.
Usage:
  securityContext:
    {{- include "initkit.adaptSecurityContext" (dict "securityContext" .Values.podSecurityContext "context" $) | nindent 4 }}
*/}}
{{- define "initkit.adaptSecurityContext" -}}
{{- $sc := deepCopy (.securityContext | default dict) -}}
{{- if include "initkit.openshift" .context -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- with $sc }}{{ toYaml . }}{{ end -}}
{{- end -}}

{{/*
initkit.securityContext: the hardened container securityContext of a step: the
configuration's securityContext (through tpl) with the step's own keys on top (a git-clone,
copy or certs step's `owner`, "UID[:GID]", sets runAsUser and runAsGroup: what it writes
is the app's), adapted to OpenShift (a permissions step's is
initkit.permissionsSecurityContext: root with CHOWN, FOWNER and DAC_OVERRIDE; a sysctl
step's with privileged: true initkit.sysctlSecurityContext: root, privileged).
Usage:
  securityContext:
    {{- include "initkit.securityContext" (dict "values" .Values.initkit "context" $ "step" $step) | nindent 4 }}
*/}}
{{- define "initkit.securityContext" -}}
{{- if eq ((.step | default dict).kind | default "") "permissions" -}}
{{- include "initkit.permissionsSecurityContext" . -}}
{{- else if and (eq ((.step | default dict).kind | default "") "sysctl") .step.privileged -}}
{{- include "initkit.sysctlSecurityContext" . -}}
{{- else -}}
{{- $step := .step | default dict -}}
{{- $sc := (include "initkit.tplTree" (dict "value" (.values.securityContext | default dict) "context" .context "where" "securityContext") | fromYaml).value -}}
{{- range $key, $value := ($step.securityContext | default dict) }}{{ $_ := set $sc $key $value }}{{ end -}}
{{- if and (has ($step.kind | default "") (list "git-clone" "copy" "certs")) (hasKey $step "owner") -}}
{{- $owner := toString $step.owner -}}
{{- if not (regexMatch "^[0-9]{1,10}(:[0-9]{1,10})?$" $owner) -}}
{{- fail (printf "initkit: step %q (%s) owner %q: give UID or UID:GID, numbers (the app's user, which the step runs as)" $step.name $step.kind $owner) -}}
{{- end -}}
{{- $ids := splitList ":" $owner -}}
{{- if eq (first $ids) "0" }}{{ fail (printf "initkit: step %q (%s) owner: uid 0 is root; a %s step never runs as root" $step.name $step.kind $step.kind) }}{{ end -}}
{{- if hasKey ($step.securityContext | default dict) "runAsUser" }}{{ fail (printf "initkit: step %q (%s): set owner or securityContext.runAsUser, not both" $step.name $step.kind) }}{{ end -}}
{{- $_ := set $sc "runAsUser" (int64 (first $ids)) -}}
{{- if eq (len $ids) 2 }}{{ $_ := set $sc "runAsGroup" (int64 (last $ids)) }}{{ end -}}
{{- end -}}
{{- include "initkit.adaptSecurityContext" (dict "securityContext" $sc "context" .context) -}}
{{- end -}}
{{- end -}}

{{/*
initkit.steps: the enabled steps of a configuration, sorted by their `order` (ties are
an error), each with `name` set to its key (the container name), as YAML `{steps: [...]}`.
Usage:
  {{- $steps := (include "initkit.steps" (dict "values" .Values.initkit "context" $) | fromYaml).steps }}
*/}}
{{- define "initkit.steps" -}}
{{- include "initkit.validate" . -}}
{{- $steps := .values.steps | default dict -}}
{{- if not (kindIs "map" $steps) -}}
{{- fail "initkit: steps must be a map keyed by step name, each step with an order (a list cannot be changed with --set)" -}}
{{- end -}}
{{- $kinds := list "wait-for" "register" "sleep" "git-clone" "render" "permissions" "fetch" "copy" "sysctl" "certs" -}}
{{- $byOrder := dict -}}
{{- range $name, $step := $steps -}}
{{- if not (kindIs "map" $step) -}}
{{- fail (printf "initkit: steps.%s must be a map with a kind and an order, got %v" $name $step) -}}
{{- end -}}
{{- $skip := list -}}
{{- if eq ($step.kind | default "") "register" }}{{ $skip = list "data" "json" "sidecar.data" "sidecar.json" }}{{ end -}}
{{- $step = merge (include "initkit.tplTree" (dict "value" (omit $step "kind" "order") "context" $.context "where" (printf "steps.%s" $name) "skip" $skip) | fromYaml).value (pick $step "kind" "order") -}}
{{- if dig "enabled" true $step -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$" $name) -}}
{{- fail (printf "initkit: steps.%s: the step name is the container name: lower-case letters, digits and '-', at most 63" $name) -}}
{{- end -}}
{{- $kind := required (printf "initkit: steps.%s.kind is required" $name) $step.kind -}}
{{- if not (has $kind $kinds) -}}
{{- fail (printf "initkit: steps.%s.kind %q is unknown; use wait-for, register, sleep, git-clone, render, permissions, fetch, copy, sysctl or certs" $name $kind) -}}
{{- end -}}
{{- if not (hasKey $step "order") -}}
{{- fail (printf "initkit: steps.%s.order is required (steps run by ascending order)" $name) -}}
{{- end -}}
{{- $order := int $step.order -}}
{{- if lt $order 0 }}{{ fail (printf "initkit: steps.%s.order must be 0 or more" $name) }}{{ end -}}
{{- $key := printf "%010d" $order -}}
{{- if hasKey $byOrder $key -}}
{{- fail (printf "initkit: steps.%s and steps.%s both have order %d; give each step its own order" (index $byOrder $key).name $name $order) -}}
{{- end -}}
{{- $_ := set $byOrder $key (merge (dict "name" $name) (omit $step "name")) -}}
{{- end -}}
{{- end -}}
{{- $out := list -}}
{{- range $key := keys $byOrder | sortAlpha -}}
{{- $step := index $byOrder $key -}}
{{- $out = append $out $step -}}
{{- end -}}
{{- toYaml (dict "steps" $out) -}}
{{- end -}}

{{/*
initkit.refs: the Secret/ConfigMap files a step reads, as YAML `{refs: [...]}`;
each ref has purpose, volume (pod volume name), dir (mount path), path (file path),
key, and secret or configMap. Secret-only purposes (token, password, ssh-key)
fail on anything but a Secret reference. Names go through tpl.
Usage:
  {{- $refs := (include "initkit.refs" (dict "step" $step "context" $) | fromYaml).refs }}
*/}}
{{- define "initkit.refs" -}}
{{- $step := .step -}}
{{- $pairs := list -}}
{{- if or (eq $step.kind "register") (eq $step.kind "fetch") -}}
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
{{- range $i, $v := $step.merge | default list -}}
{{- $pairs = append $pairs (list (printf "merge-%d" $i) $v false) -}}
{{- end -}}
{{- $setFile := $step.setFile | default dict -}}
{{- range $i, $k := keys $setFile | sortAlpha -}}
{{- $pairs = append $pairs (list (printf "set-file-%d" $i) (index $setFile $k) true) -}}
{{- end -}}
{{- else if eq $step.kind "certs" -}}
{{- with $step.ca -}}
{{- if not (kindIs "map" .) }}{{ fail (printf "initkit: step %q (certs) ca must be {secret: NAME, certKey: tls.crt, keyKey: tls.key}" $step.name) }}{{ end -}}
{{- $secret := required (printf "initkit: step %q (certs) ca.secret is required (the Secret holding the CA's certificate and key)" $step.name) .secret -}}
{{- $pairs = append $pairs (list "ca-cert" (dict "secret" $secret "key" (.certKey | default "tls.crt")) true) -}}
{{- $pairs = append $pairs (list "ca-key" (dict "secret" $secret "key" (.keyKey | default "tls.key")) true) -}}
{{- $pairs = append $pairs (list "ca-key-password" .keyPassword true) -}}
{{- end -}}
{{- range $store := list "pkcs12" "keystore" "truststore" -}}
{{- with index $step $store -}}
{{- if not (kindIs "map" .) }}{{ fail (printf "initkit: step %q (certs) %s must be {name: FILE, password: {secret: NAME, key: KEY}}" $step.name $store) }}{{ end -}}
{{- $pairs = append $pairs (list (printf "%s-password" $store) .password true) -}}
{{- end -}}
{{- end -}}
{{- else if eq $step.kind "wait-for" -}}
{{- range $i, $v := $step.secretFiles | default list -}}
{{- $where := printf "initkit: step %q (wait-for) secretFiles[%d]" $step.name $i -}}
{{- if not (kindIs "map" $v) }}{{ fail (printf "%s must be {secret: NAME, key: KEY, path: /FILE}" $where) }}{{ end -}}
{{- $path := toString (required (printf "%s: path is required (the file a target names, e.g. ?password_file=PATH)" $where) $v.path) -}}
{{- if or (not (hasPrefix "/" $path)) (hasSuffix "/" $path) (regexMatch "(^|/)\\.\\.?(/|$)" $path) -}}
{{- fail (printf "%s: path %q must be an absolute file path, without . or .. components" $where $path) -}}
{{- end -}}
{{- $pairs = append $pairs (list (printf "secret-%d" $i) (dict "secret" $v.secret "key" $v.key "file" $path) true) -}}
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
{{- with $ref.file }}{{ $_ := set $entry "path" . }}{{ $_ := set $entry "file" true }}{{ end -}}
{{- if $ref.secret -}}
{{- $_ := set $entry "secret" (toString $ref.secret) -}}
{{- else -}}
{{- $_ := set $entry "configMap" (toString $ref.configMap) -}}
{{- end -}}
{{- $refs = append $refs $entry -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "refs" $refs) -}}
{{- end -}}

{{/*
initkit.kubeVersion: fails unless the target Kubernetes is 1.25 or newer (the
chart's kubeVersion; Helm itself checks only the top chart's). Renders nothing.
Usage:
  {{- include "initkit.kubeVersion" $ctx }}
*/}}
{{- define "initkit.kubeVersion" -}}
{{- if not (semverCompare ">=1.25.0-0" .Capabilities.KubeVersion.Version) -}}
{{- fail (printf "initkit: needs Kubernetes 1.25 or newer (kubeVersion >=1.25.0-0), the target is %s" .Capabilities.KubeVersion.Version) -}}
{{- end -}}
{{- end -}}
