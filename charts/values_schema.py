"""The source of charts/initkit/values.schema.json (tests/charts/test_schema.py checks they agree).

The schema closes every object, down to the Kubernetes definitions the values embed, so a
typo at any level fails `helm template`. Regenerate after a change:

    make docs     # or: python3 charts/values_schema.py > charts/initkit/values.schema.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

KINDS = ["wait-for", "register", "sleep", "git-clone", "render", "permissions", "fetch", "copy", "sysctl", "certs"]


Schema = dict[str, Any]


def obj(props: Schema, required: tuple[str, ...] | list[str] = (), **kw: Any) -> Schema:
    """A closed object: only `props`."""
    d: Schema = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        d["required"] = list(required)
    d.update(kw)
    return d


def arr(items: Schema, **kw: Any) -> Schema:
    return {"type": "array", "items": items, **kw}


S = {"type": "string"}
B = {"type": "boolean"}
# A Helm template the chart renders with tpl in the parent's context (initkit.tplTree): a
# string holding {{ ... }}. Every constrained value of a step accepts one besides its own
# literal form, which keeps its checks (runAsUser: "abc" or -1 still fail).
TEMPLATE = {"description": "A Helm template, rendered with tpl.", "type": "string", "pattern": "\\{\\{[\\s\\S]*\\}\\}"}
_NESTED = ("properties", "items", "additionalProperties", "$ref", "allOf")


def templated(schema: Schema) -> Schema:
    """`schema` with a template string accepted wherever a constrained literal is (leaves:
    numbers, booleans, enums, patterned strings); objects and arrays keep their shape."""
    if "$ref" in schema:
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: templated(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = templated(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = templated(out["additionalProperties"])
    if any(k in out for k in _NESTED) or out.get("type") in ("object", "array"):
        return out
    if out.get("type") == "string" and not ({"pattern", "enum", "const"} & out.keys()):
        return out  # any string, a template too
    description = out.pop("description", None)
    wrapped: Schema = {"anyOf": [out, TEMPLATE]}
    if description:
        wrapped = {"description": description, **wrapped}
    return wrapped


quantity = {
    "description": "A Kubernetes quantity such as 100m, 64Mi or 1.",
    "type": ["string", "number"],
    "pattern": "^[+]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$",
}
defs: dict[str, Schema] = {}
defs["quantity"] = quantity
defs["resourceList"] = {
    "description": "cpu, memory, ephemeral-storage, hugepages-<size>, or an extended resource (domain/name).",
    "type": "object",
    "propertyNames": {"pattern": "^(cpu|memory|ephemeral-storage|hugepages-[0-9]+[KMG]i|[a-z0-9.-]+/[-._a-zA-Z0-9]+)$"},
    "additionalProperties": {"$ref": "#/$defs/quantity"},
}
defs["resources"] = obj(
    {
        "limits": {"$ref": "#/$defs/resourceList"},
        "requests": {"$ref": "#/$defs/resourceList"},
        "claims": arr(obj({"name": S, "request": S}, ["name"])),
    },
    description="Kubernetes ResourceRequirements.",
)
defs["securityContext"] = obj(
    {
        "allowPrivilegeEscalation": B,
        "appArmorProfile": obj(
            {"type": {"enum": ["Localhost", "RuntimeDefault", "Unconfined"]}, "localhostProfile": S}, ["type"]
        ),
        "capabilities": obj({"add": arr(S), "drop": arr(S)}),
        "privileged": B,
        "procMount": {"enum": ["Default", "Unmasked"]},
        "readOnlyRootFilesystem": B,
        "runAsGroup": {"type": "integer", "minimum": 0},
        "runAsNonRoot": B,
        "runAsUser": {"type": "integer", "minimum": 0},
        "seLinuxOptions": obj({"level": S, "role": S, "type": S, "user": S}),
        "seccompProfile": obj(
            {"type": {"enum": ["Localhost", "RuntimeDefault", "Unconfined"]}, "localhostProfile": S}, ["type"]
        ),
        "windowsOptions": obj(
            {"gmsaCredentialSpec": S, "gmsaCredentialSpecName": S, "hostProcess": B, "runAsUserName": S}
        ),
    },
    description="Kubernetes container SecurityContext.",
)


def key_ref() -> Schema:
    return obj({"name": S, "key": S, "optional": B}, ["key"])


defs["envVar"] = obj(
    {
        "name": {"type": "string", "minLength": 1},
        "value": S,
        "valueFrom": obj(
            {
                "fieldRef": obj({"apiVersion": S, "fieldPath": S}, ["fieldPath"]),
                "resourceFieldRef": obj(
                    {"containerName": S, "divisor": {"$ref": "#/$defs/quantity"}, "resource": S}, ["resource"]
                ),
                "configMapKeyRef": key_ref(),
                "secretKeyRef": key_ref(),
                "fileKeyRef": obj({"key": S, "optional": B, "path": S, "volumeName": S}, ["key", "path", "volumeName"]),
            }
        ),
    },
    ["name"],
    description="Kubernetes EnvVar.",
)
defs["volumeMount"] = obj(
    {
        "name": S,
        "mountPath": {"type": "string", "pattern": "^/"},
        "readOnly": B,
        "subPath": S,
        "subPathExpr": S,
        "mountPropagation": {"enum": ["None", "HostToContainer", "Bidirectional"]},
        "recursiveReadOnly": {"enum": ["Disabled", "IfPossible", "Enabled"]},
    },
    ["name", "mountPath"],
    description="Kubernetes VolumeMount.",
)
SOURCES = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
]
defs["volume"] = obj(
    {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        **{s: {"type": "object"} for s in SOURCES},
    },
    ["name"],
    minProperties=2,
    description="Kubernetes Volume: a name and one volume source.",
)
defs["duration"] = {
    "description": "A non-negative duration: a string such as 30s, 5m, 1m30s, 500ms, 2h, 1d, or a number of seconds.",
    "type": ["string", "number"],
    "pattern": "^([0-9]+(\\.[0-9]+)?|([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+)$",
    "minimum": 0,
}
keyPat = {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"}
nonempty = {"type": "string", "minLength": 1}
defs["secretRef"] = obj(
    {"secret": nonempty, "key": keyPat},
    ["secret", "key"],
    description="A key of a Secret, mounted as a file (never a literal value).",
)
defs["fileRef"] = obj(
    {"secret": nonempty, "configMap": nonempty, "key": keyPat},
    ["key"],
    anyOf=[{"required": ["secret"]}, {"required": ["configMap"]}],
    **{"not": {"required": ["secret", "configMap"]}},
    description="A key of a Secret or a ConfigMap, mounted as a file.",
)
defs["writeVolume"] = obj(
    {
        "name": nonempty,
        "mountPath": {"type": "string", "pattern": "^/"},
        "subPath": {
            "description": "The directory of the volume mounted at mountPath (relative; no ..).",
            "type": "string",
            "pattern": "^[^/]",
            "not": {"pattern": "(^|/)\\.\\.(/|$)"},
        },
    },
    ["name", "mountPath"],
    description="The pod volume a step writes into, and where it is mounted.",
)
TAG = {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"}
DIGEST = {"type": "string", "pattern": "^(|sha256:[a-f0-9]{64})$"}
PULL = {"enum": ["Always", "IfNotPresent", "Never"]}
pullSecret = {"oneOf": [nonempty, obj({"name": nonempty}, ["name"])]}
defs["image"] = obj(
    {
        "registry": S,
        "repository": nonempty,
        "tag": {
            "type": "string",
            "pattern": "^([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$",
            "description": 'A string: quote versions such as "1.10".',
        },
        "digest": DIGEST,
        "slim": B,
        "slimSuffix": S,
        "slimDigest": DIGEST,
        "pullPolicy": PULL,
        "pullSecrets": arr(pullSecret),
    }
)
defs["stepImage"] = obj(
    {
        "registry": S,
        "repository": nonempty,
        "tag": TAG,
        "digest": DIGEST,
        "slim": B,
        "pullPolicy": PULL,
    },
    description="Image keys of one step, set over the configuration's image.",
)

common = {
    "kind": {"description": "Step kind.", "enum": KINDS},
    "order": {
        "description": "Position: steps run by ascending order.",
        "type": "integer",
        "minimum": 0,
        "maximum": 999999999,
    },
    "enabled": {"description": "false skips the step.", "type": "boolean"},
    "downwardAPI": {
        "description": "Give the step the Downward API env (POD_IP, POD_NAME, ...): auto (render, register, "
        "and steps whose values mention POD_ or NODE_NAME), true or false.",
        "enum": ["auto", True, False],
    },
    "image": {"$ref": "#/$defs/stepImage"},
    "env": {"description": "Extra env.", "type": "array", "items": {"$ref": "#/$defs/envVar"}},
    "resources": {"$ref": "#/$defs/resources"},
    "securityContext": {"$ref": "#/$defs/securityContext"},
    "extraArgs": {"description": "Extra CLI arguments, appended.", "type": "array", "items": S},
    "volumeMounts": {"description": "Extra volume mounts.", "type": "array", "items": {"$ref": "#/$defs/volumeMount"}},
}
DUR = {"$ref": "#/$defs/duration"}
METHOD = {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"]}
JSON = {"type": ["string", "object", "array"]}
OCTAL = {"type": "string", "pattern": "^0?[0-7]{3}$"}
ID_MAX = 2**32 - 2  # (uid_t)-1 means "unchanged" to chown(2)
# chmod's symbolic clauses (ugoa, then +-= with rwxX or one of ugo), comma-separated, or
# octal 0 to 0777: the CLI refuses setuid, setgid and sticky (s, t, octal above 0777).
_CLAUSE = "[ugoa]*([-+=]([rwxX]*|[ugo]))+"
MODE_PATTERN = f"^(0?[0-7]{{1,3}}|{_CLAUSE}(,{_CLAUSE})*)$"
PATH = {"type": "string", "pattern": "^(/|\\{\\{)"}
PERM_OWNER = {
    "description": 'Numeric owner: "UID:GID", "UID", ":GID", or a UID as a number.',
    "type": ["string", "integer"],
    "pattern": "^([0-9]{1,10}(:[0-9]{1,10})?|:[0-9]{1,10})$",
    "minimum": 0,
    "maximum": ID_MAX,
}
PERM_MODE = {
    "description": 'chmod\'s mode, a string: symbolic ("u+rwX,g+rwX") or octal ("0750"); no s or t.',
    "type": "string",
    "pattern": MODE_PATTERN,
}
_SCHEMES = (
    "dns:|tcp:|https?://|file:|postgres(ql)?://|mysql://|rediss?://|mongodb://|amqps?://|kafka://|grpcs?://|cql://"
)
_API = "(gone:)?(job:|pods:|endpoints:|daemonset:|cr:)"
TARGET_PATTERN = f"^({_SCHEMES}|{_API}|\\{{\\{{).+"
OWNER_AS = {
    "description": 'The app\'s user, "UID" or "UID:GID": the step runs as it (runAsUser, runAsGroup), so that '
    "what it writes is the app's (no capability: Pod Security restricted).",
    "type": "string",
    "pattern": "^[0-9]{1,10}(:[0-9]{1,10})?$",
}
STORE = obj(
    {"name": {"type": "string", "pattern": "^[^./][^/]*$"}, "password": {"$ref": "#/$defs/secretRef"}}, ["name"]
)
kinds = {
    "waitForStep": (
        "wait-for: wait until every target is ready.",
        {
            "targets": {
                "description": "Targets (through tpl): dns:NAME, tcp:HOST:PORT, http(s)://..., file:PATH; databases "
                "and brokers (postgres://, mysql://, redis(s)://, mongodb://, amqp(s)://, kafka://, grpc(s)://, "
                "cql://; a password as ?password_file=PATH of secretFiles); Kubernetes API targets "
                "([gone:]job:, pods:, endpoints:, daemonset:, cr:; the chart's initkit.rbac grants them).",
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "pattern": TARGET_PATTERN},
            },
            "secretFiles": {
                "description": "Secret keys mounted read-only as files at `path`, for a target's "
                "?password_file=PATH (or any *_file option).",
                "type": "array",
                "items": obj(
                    {
                        "secret": nonempty,
                        "key": keyPat,
                        "path": {"type": "string", "pattern": "^/", "not": {"pattern": "(^|/)\\.\\.?(/|$)|/$"}},
                    },
                    ["secret", "key", "path"],
                ),
            },
            "timeout": DUR,
            "interval": DUR,
            "dnsServer": {"description": "DNS server IP[:PORT].", "type": "string"},
        },
        ["targets"],
        {},
    ),
    "registerStep": (
        "register: send one HTTP request announcing the pod.",
        {
            "url": {"type": "string", "pattern": "^(https?://|\\{\\{)"},
            "method": METHOD,
            "data": S,
            "json": JSON,
            "headers": {"type": "array", "items": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+:"}},
            "token": {"$ref": "#/$defs/secretRef"},
            "ca": {"$ref": "#/$defs/fileRef"},
            "attempts": {"type": "integer", "minimum": 1},
            "timeout": DUR,
            "sidecar": obj(
                {
                    "method": {"description": "Method of the deregister request.", **METHOD},
                    "url": {
                        "description": "URL of the deregister request (default: url; through tpl).",
                        "type": "string",
                        "pattern": "^(https?://|\\{\\{)",
                    },
                    "data": {"description": "Form body of the deregister request (runtime Jinja).", **S},
                    "json": {"description": "JSON body of the deregister request (runtime Jinja).", **JSON},
                    "timeout": {"description": "Time limit of the deregistration (default 10s).", **DUR},
                    "heartbeat": {"description": "Send the register request again this often.", **DUR},
                },
                anyOf=[{"required": ["method"]}, {"required": ["heartbeat"]}],
                dependentRequired={"url": ["method"], "data": ["method"], "json": ["method"]},
                **{"not": {"required": ["data", "json"]}},
                description="Run as a Kubernetes 1.29+ native sidecar (restartPolicy: Always): stay running "
                "after registering and, when the pod stops, send the deregister request.",
            ),
        },
        ["url"],
        {},
    ),
    "sleepStep": ("sleep: wait for a duration.", {"duration": DUR}, ["duration"], {}),
    "gitCloneStep": (
        "git-clone: clone a repository into a pod volume.",
        {
            "repo": nonempty,
            "volume": {"$ref": "#/$defs/writeVolume"},
            "dest": {"type": "string", "pattern": "^(/|\\{\\{)"},
            "ref": S,
            "depth": {"type": "integer", "minimum": 0},  # 0: the full history (initkit's default is 1)
            "submodules": {"oneOf": [B, {"enum": ["recursive", "shallow", "off"]}]},
            "username": S,
            "owner": {
                "description": 'The checkout\'s owner, "UID" or "UID:GID": the step runs as it (runAsUser, '
                "runAsGroup), so that the app running git in the checkout owns it.",
                "type": "string",
                "pattern": "^[0-9]{1,10}(:[0-9]{1,10})?$",
            },
            "password": {"$ref": "#/$defs/secretRef"},
            "sshKey": {"$ref": "#/$defs/secretRef"},
            "knownHosts": {"$ref": "#/$defs/fileRef"},
        },
        ["repo", "volume"],
        {"dependentRequired": {"sshKey": ["knownHosts"], "password": ["username"]}},
    ),
    "renderStep": (
        "render: render a template (template), deep-merge files (merge) or change a file's keys (edit) into a "
        "file in a pod volume.",
        {
            "template": {"$ref": "#/$defs/fileRef"},
            "merge": {
                "description": "YAML/JSON files deep-merged in order (mappings merge, the rest replaces) into dest.",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/fileRef"},
            },
            "edit": {
                "description": "A YAML, JSON, INI or .properties file below volume.mountPath whose keys set and "
                "setFile change, comments and order kept; written back, or to dest (through tpl).",
                "type": "string",
                "pattern": "^(/|\\{\\{)",
            },
            "format": {"description": "--format of merge or edit.", "enum": ["yaml", "json", "ini", "properties"]},
            "volume": {"$ref": "#/$defs/writeVolume"},
            "dest": {"type": "string", "pattern": "^(/|\\{\\{)"},
            "values": {"type": "array", "items": {"$ref": "#/$defs/fileRef"}},
            "set": {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}},
            "setFile": {
                "description": "KEY: a Secret ref whose content is the value (--set-file).",
                "type": "object",
                "additionalProperties": {"$ref": "#/$defs/secretRef"},
            },
            "mode": OCTAL,
        },
        ["volume"],
        {
            "oneOf": [
                {"required": ["template", "dest"]},
                {"required": ["merge", "dest"]},
                {"required": ["edit"], "anyOf": [{"required": ["set"]}, {"required": ["setFile"]}]},
            ]
        },
    ),
    "permissionsStep": (
        "permissions: give the files of its volumeMounts an owner and a mode, as root with CHOWN, FOWNER and "
        "DAC_OVERRIDE.",
        {
            "volumeMounts": {
                "description": "The volumes it fixes (and any other mounts).",
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/volumeMount"},
            },
            "paths": {
                "description": "Paths to fix, each a writable volumeMount's mountPath or below it (through tpl); "
                "a path, or {path, owner, mode} with its own owner or mode (one container per (owner, mode), "
                "in the order given); default: every writable volumeMount.",
                "type": "array",
                "minItems": 1,
                "items": {
                    "anyOf": [
                        PATH,
                        obj(
                            {"path": PATH, "owner": templated(PERM_OWNER), "mode": templated(PERM_MODE)},
                            ["path"],
                            anyOf=[{"required": ["owner"]}, {"required": ["mode"]}],
                        ),
                    ]
                },
            },
            "owner": PERM_OWNER,
            "uid": {"description": "Owner uid (instead of owner).", "type": "integer", "minimum": 0, "maximum": ID_MAX},
            "gid": {"description": "Owner gid (instead of owner).", "type": "integer", "minimum": 0, "maximum": ID_MAX},
            "mode": PERM_MODE,
            "extraCapabilities": {
                "description": "Capabilities added to CHOWN, FOWNER and DAC_OVERRIDE (which already walks 0700 "
                "directories): DAC_READ_SEARCH is outside Pod Security baseline and never needed.",
                "type": "array",
                "uniqueItems": True,
                "items": {"enum": ["DAC_READ_SEARCH", "DAC_OVERRIDE"]},
            },
            "openshiftAllowRoot": {
                "description": "Under OpenShift adaptation, render the step anyway (uid 0 kept): its service account "
                "has an SCC allowing uid 0, CHOWN and FOWNER.",
                "type": "boolean",
            },
        },
        ["volumeMounts"],
        {
            "anyOf": [
                {"required": ["owner"]},
                {"required": ["uid"]},
                {"required": ["gid"]},
                {"required": ["mode"]},
                {"required": ["paths"]},
            ],
            "dependentSchemas": {"owner": {"not": {"anyOf": [{"required": ["uid"]}, {"required": ["gid"]}]}}},
        },
    ),
    "fetchStep": (
        "fetch: download a file (or an archive, extracted) into a pod volume, verified by its SHA-256.",
        {
            "url": {"description": "http(s) URL (through tpl).", "type": "string", "pattern": "^(https?://|\\{\\{)"},
            "volume": {"$ref": "#/$defs/writeVolume"},
            "dest": {
                "description": "The file (or, with extract, the directory) to write: below volume.mountPath, "
                "not the mountPath itself (through tpl).",
                "type": "string",
                "pattern": "^(/|\\{\\{)",
            },
            "sha256": {
                "description": "Expected SHA-256 (64 hex digits).",
                "type": "string",
                "pattern": "^[0-9a-fA-F]{64}$",
            },
            "extract": {"description": "dest is a directory: extract the tar (gz, xz, bz2) or zip into it.", **B},
            "stripComponents": {
                "description": "With extract: drop this many leading path components.",
                "type": "integer",
                "minimum": 0,
                "maximum": 100,
            },
            "mode": {"description": 'Mode of the file (without extract), a string: "0755".', **OCTAL},
            "headers": {"type": "array", "items": {"type": "string", "pattern": "^[!#$%&'*+.^_`|~0-9A-Za-z-]+:"}},
            "token": {"$ref": "#/$defs/secretRef"},
            "ca": {"$ref": "#/$defs/fileRef"},
            "attempts": {"type": "integer", "minimum": 1},
            "timeout": DUR,
        },
        ["url", "volume", "dest", "sha256"],
        {
            "dependentSchemas": {
                "stripComponents": {"properties": {"extract": {"const": True}}, "required": ["extract"]},
                "mode": {"not": {"properties": {"extract": {"const": True}}, "required": ["extract"]}},
            }
        },
    ),
    "copyStep": (
        "copy: copy files out of the app's image (an image volume), a ConfigMap, a Secret or another volume "
        "into a pod volume.",
        {
            "from": obj(
                {
                    "image": obj(
                        {"reference": nonempty, "pullPolicy": PULL},
                        ["reference"],
                        description="A Kubernetes image volume (1.31+, on by default since 1.35), mounted read-only.",
                    ),
                    "configMap": nonempty,
                    "secret": nonempty,
                    "volume": {"description": "A pod volume of yours, mounted read-only.", **nonempty},
                    "path": {
                        "description": "The directory or file inside the source (default /).",
                        "type": "string",
                        "pattern": "^(/|\\{\\{)",
                    },
                },
                oneOf=[{"required": [k]} for k in ("image", "configMap", "secret", "volume")],
            ),
            "volume": {"$ref": "#/$defs/writeVolume"},
            "dest": {"type": "string", "pattern": "^(/|\\{\\{)"},
            "overwrite": {"description": "Replace files the app changed since the last copy, too.", **B},
            "owner": OWNER_AS,
            "mode": {"description": "chmod's mode applied to the copies' modes, a string.", **PERM_MODE},
            "timeout": DUR,
        },
        ["from", "volume"],
        {},
    ),
    "sysctlStep": (
        "sysctl: set kernel parameters, writing only those that need it.",
        {
            "settings": {
                "description": "KEY: VALUE (a number, or numbers separated by spaces); a key that is not namespaced "
                "needs privileged: true.",
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": "^[A-Za-z0-9_][-A-Za-z0-9_./]*$"},
                "additionalProperties": {"type": ["integer", "string"], "pattern": "^-?[0-9]+( +-?[0-9]+)*$"},
            },
            "exact": {"description": "Set each value exactly (--exact); default: only raise.", **B},
            "privileged": {
                "description": "Run privileged, as root: needed for keys that are not namespaced (vm.*, fs.*); "
                "never a silent default.",
                **B,
            },
            "openshiftAllowRoot": {
                "description": "Under OpenShift adaptation, render a privileged step anyway.",
                **B,
            },
        },
        ["settings"],
        {},
    ),
    "certsStep": (
        "certs: issue a TLS certificate for the pod (its IP and names) into a pod volume, with keystores.",
        {
            "volume": {"$ref": "#/$defs/writeVolume"},
            "dest": {"type": "string", "pattern": "^(/|\\{\\{)"},
            "ca": obj(
                {
                    "secret": nonempty,
                    "certKey": {"description": "Key of the CA certificate (tls.crt).", **keyPat},
                    "keyKey": {"description": "Key of the CA's private key (tls.key).", **keyPat},
                    "keyPassword": {"$ref": "#/$defs/secretRef"},
                },
                ["secret"],
                description="The CA, from a Secret; without it one is created and kept in caDir.",
            ),
            "caDir": {"description": "Where a created CA is kept (default dest).", "type": "string"},
            "caCommonName": S,
            "caDays": {"type": "integer", "minimum": 1, "maximum": 36500},
            "service": {"description": "Headless Service: POD_NAME.SERVICE.NS.svc.DOMAIN is added.", **S},
            "namespace": S,
            "clusterDomain": S,
            "commonName": S,
            "dnsNames": arr(S),
            "ipAddresses": arr(S),
            "pod": {"description": "Add the pod's name and IP (default true).", **B},
            "keyType": {"enum": ["rsa-2048", "rsa-3072", "rsa-4096", "ecdsa-p256", "ecdsa-p384"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 3650},
            "renewBefore": DUR,
            "pkcs12": STORE,
            "keystore": STORE,
            "truststore": STORE,
            "alias": S,
            "caAlias": S,
            "owner": OWNER_AS,
        },
        ["volume"],
        {"not": {"required": ["ca", "caDir"]}},
    ),
}
kind_of = {
    "waitForStep": "wait-for",
    "registerStep": "register",
    "sleepStep": "sleep",
    "gitCloneStep": "git-clone",
    "renderStep": "render",
    "permissionsStep": "permissions",
    "fetchStep": "fetch",
    "copyStep": "copy",
    "sysctlStep": "sysctl",
    "certsStep": "certs",
}
for name in ("securityContext", "volumeMount", "writeVolume", "stepImage", "duration", "secretRef", "fileRef"):
    defs[name] = templated(defs[name])
for name, (desc, props, req, extra) in kinds.items():
    values = {k: v if k in ("kind", "order") else templated(v) for k, v in {**common, **props}.items()}
    defs[name] = {"description": desc, **obj(values, ["kind", "order", *req]), **extra}
defs["step"] = {
    "description": "One init step; its kind decides its keys.",
    "type": "object",
    "required": ["kind", "order"],
    "properties": {"kind": common["kind"], "order": common["order"]},
    "allOf": [
        {"if": {"properties": {"kind": {"const": k}}, "required": ["kind"]}, "then": {"$ref": f"#/$defs/{n}"}}
        for n, k in kind_of.items()
    ],
}
schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "initkit library chart values (the parent chart's block for this dependency)",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "global": {
            "type": "object",
            "properties": {
                "imageRegistry": S,
                "imagePullSecrets": arr(pullSecret),
                "compatibility": {
                    "type": "object",
                    "properties": {
                        "openshift": {
                            "type": "object",
                            "properties": {"adaptSecurityContext": {"enum": ["auto", "force", "disabled"]}},
                        }
                    },
                },
            },
        },
        "image": {"$ref": "#/$defs/image"},
        "command": arr(S),
        "logFormat": {"enum": ["", "text", "json"]},
        "debug": B,
        "quiet": B,
        "downwardAPI": common["downwardAPI"],
        "securityContext": {"$ref": "#/$defs/securityContext"},
        "resources": {"$ref": "#/$defs/resources"},
        "env": arr({"$ref": "#/$defs/envVar"}),
        "fileMode": {
            "description": "0400, 0440, 0444, 0600, 0640 or 0644, in octal (decimal 440 is octal 0670: rejected).",
            "enum": [0o400, 0o440, 0o444, 0o600, 0o640, 0o644],
        },
        "volumes": arr({"$ref": "#/$defs/volume"}),
        "rbac": obj({"create": B, "serviceAccountName": S}),
        "steps": {
            "type": "object",
            "propertyNames": {"pattern": "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"},
            "additionalProperties": {"$ref": "#/$defs/step"},
        },
    },
    "$defs": defs,
}


def render() -> str:
    """values.schema.json's text."""
    return json.dumps(schema, indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
