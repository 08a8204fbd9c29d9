-- Requests kube-apiserver marked as calls to a deprecated API version: its audit annotations
-- `k8s.io/deprecated: "true"` and, when a removal is planned, `k8s.io/removed-release`. One
-- row per such request, keyed by the request: few requests are deprecated, so `requests` keeps
-- its width, ingest pays a row only for them, and a redelivered event finds its row there.
CREATE TABLE request_deprecations (
    request_id      INTEGER PRIMARY KEY,       -- requests.id
    removed_release TEXT                       -- '1.25' as the apiserver wrote it; NULL: none planned
) STRICT;
