"""The admission webhook: injects the execguard sidecar into opted-in, selected pods.

Layers, from pure to I/O:

* `reviews` — typed AdmissionReview and pod payloads;
* `patches` — JSON Patch operations (RFC 6902) and a reference applier;
* `selection` — whether a pod is injected, and why not;
* `injection` — the containers and volumes that are added;
* `mutation` — pod + policies -> a minimal JSON Patch (pure);
* `admission` — an untrusted request body -> an AdmissionReview response;
* `cluster_view` — what admission needs to know from the API (namespace labels, policies);
* `server` — the stateless aiohttp app serving /mutate and /validate;
* `certificates`, `configuration`, `audit`, `management` — the one-replica duties
  (serving certificate, webhook configurations, periodic audit) run under a Lease.
"""
