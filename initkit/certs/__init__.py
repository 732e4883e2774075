"""Certificates and keystores for a pod, issued by an init container (`initkit certs`).

cert-manager's CSI driver cannot put the pod's IP into a certificate: the IP
is not known when the volume mounts. An init container runs after it is. This
package is the mechanism; `initkit.commands.certs` only parses options.

- `pem`: bounded reads of the files a Secret mounts, parsed into certificates
  and keys, with one-line errors naming the file, never its content;
- `ca`: the issuing CA, mounted (checked: a CA, its key, in its validity) or
  created once and kept;
- `leaf`: the names the pod's certificate must hold, issuing it, and the
  judgement whether an existing one can be kept;
- `stores`: PKCS#12 (AES-256-CBC, PBKDF2, SHA-256 MAC) and JKS via pyjks;
- `dest`: DEST's files: read without following links, written through
  `initkit.fs.write_atomic`, and the ledger that tells initkit's files from an
  operator's;
- `job`: the run, step by step.

cryptography and pyjks are imported here, so only `initkit certs` loads them.
"""
