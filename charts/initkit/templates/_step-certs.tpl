{{/*
initkit.step.certs: the CLI arguments and the volume mount of a certs step (a TLS
certificate for this pod, with its IP among the names), as YAML {args: [...], mounts: [...]}.
The CA comes from a Secret (`ca: {secret, certKey, keyKey, keyPassword}`, mounted as files)
or is created on the first run and kept in the volume (`caDir`, default dest). Keystores
(`pkcs12`, `keystore`, `truststore`: {name, password: Secret ref}) get their passwords as
files. dest (default the volume's mountPath), service, dnsNames, ipAddresses, commonName,
caDir and the stores' names go through tpl. It runs on the full image (the slim one has
no cryptography) with the Downward API env (POD_IP, POD_NAME, POD_NAMESPACE); `owner`
runs it as the app's user, so the key is the app's (see initkit.securityContext).
Replaces: openssl req ... && openssl x509 -req -CA ... && openssl pkcs12 -export ... && keytool ...
Usage (from initkit.container):
  {{- $out := include "initkit.step.certs" (dict "step" $step "file" $file "where" $where "context" $ctx) | fromYaml }}
*/}}
{{- define "initkit.step.certs" -}}
{{- $step := .step -}}
{{- $file := .file -}}
{{- $where := .where -}}
{{- $out := include "initkit.destination" (dict "step" $step "where" $where "context" .context "defaultToMount" true) | fromYaml -}}
{{- $args := list $out.dest -}}
{{- with (index $file "ca-cert") }}{{ $args = concat $args (list "--ca-cert" . "--ca-key" (index $file "ca-key")) }}{{ end -}}
{{- with (index $file "ca-key-password") }}{{ $args = concat $args (list "--ca-key-password-file" .) }}{{ end -}}
{{- with $step.caDir -}}
{{- if $step.ca }}{{ fail (printf "%s: caDir keeps a CA the step creates; with ca (a Secret) there is none to keep" $where) }}{{ end -}}
{{- $dir := toString . -}}
{{- $mount := trimSuffix "/" $out.mount.mountPath -}}
{{- if not (or (eq $dir $out.mount.mountPath) (eq $dir $mount) (hasPrefix (printf "%s/" $mount) $dir)) -}}
{{- fail (printf "%s: caDir %q must be %s or below it (the root filesystem is read-only)" $where $dir $out.mount.mountPath) -}}
{{- end -}}
{{- $args = concat $args (list "--ca-dir" $dir) -}}
{{- end -}}
{{- range $key, $flag := dict "caCommonName" "--ca-common-name" "caDays" "--ca-days" "service" "--service" "namespace" "--namespace" "clusterDomain" "--cluster-domain" "commonName" "--common-name" "keyType" "--key-type" "days" "--days" "alias" "--alias" "caAlias" "--ca-alias" -}}
{{- if hasKey $step $key -}}
{{- $value := index $step $key -}}
{{- if kindIs "float64" $value }}{{ $value = int64 $value }}{{ end -}}
{{- $args = concat $args (list $flag (toString $value)) -}}
{{- end -}}
{{- end -}}
{{- with $step.renewBefore }}{{ $args = concat $args (list "--renew-before" (include "initkit.duration" .)) }}{{ end -}}
{{- if hasKey $step "pod" }}{{ $args = append $args ($step.pod | ternary "--pod" "--no-pod") }}{{ end -}}
{{- range $step.dnsNames | default list }}{{ $args = concat $args (list "--dns-name" (toString .)) }}{{ end -}}
{{- range $step.ipAddresses | default list }}{{ $args = concat $args (list "--ip-address" (toString .)) }}{{ end -}}
{{- range $store := list "pkcs12" "keystore" "truststore" -}}
{{- with index $step $store -}}
{{- $name := toString (required (printf "%s: %s.name is required (the file written in dest)" $where $store) .name) -}}
{{- if or (contains "/" $name) (hasPrefix "." $name) }}{{ fail (printf "%s: %s.name %q must be a file name in dest, without / or a leading ." $where $store $name) }}{{ end -}}
{{- $args = concat $args (list (printf "--%s" $store) $name) -}}
{{- with (index $file (printf "%s-password" $store)) }}{{ $args = concat $args (list (printf "--%s-password-file" $store) .) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if and $step.pkcs12 (not (index $file "pkcs12-password")) }}{{ fail (printf "%s: pkcs12.password is required (a Secret ref)" $where) }}{{ end -}}
{{- if and $step.keystore (not (index $file "keystore-password")) }}{{ fail (printf "%s: keystore.password is required (a Secret ref)" $where) }}{{ end -}}
{{- if and $step.truststore (not (or (index $file "truststore-password") (index $file "keystore-password"))) }}{{ fail (printf "%s: truststore.password is required (a Secret ref), unless a keystore gives its own" $where) }}{{ end -}}
{{- toYaml (dict "args" $args "mounts" (list $out.mount)) -}}
{{- end -}}
