"""Waits on the Kubernetes API: the pod's own ServiceAccount, no kubectl.

- `config`: where the API server is and who initkit is to it (in-cluster: the
  ServiceAccount's token file, re-read on each connection, and CA; or a kubeconfig).
- `client`: bounded requests to it on `requests` (initkit.httpclient): a LIST read
  page by page, a WATCH read line by line, every object and page capped in size,
  every connection cut at the deadline.
- `watch`: list, then watch from the list's resourceVersion, resume on reconnect,
  relist on 410 Gone, jittered bounded backoff between attempts.
- `targets`: job:, pods:, endpoints:, daemonset:, cr: and gone:, each a query and a
  judgement of the objects the watch keeps.

Imported only by wait-for's API targets: `initkit sleep` and `wait-for tcp:` load none of it.
"""
