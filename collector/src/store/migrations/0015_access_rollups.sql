-- What programs did to which objects, kept current at ingest like `usage` (store/rollup.rs):
-- `apps --rbac` and `deps` read these instead of grouping `requests`. Endpoint-first, so they
-- are folded a range of endpoints at a time under the marks of migration 6 and counted again
-- with their endpoints after a remap. Only requests with an identity (the queries join it).

-- Per (endpoint, identity, user, kind of access): the accesses RBAC rules are derived from, and
-- with `hits` what `deps` counts. `user_id` is the impersonated user, else the user (0: none).
-- `url` 1: a non-resource URL, its path (the request URI before `?`) in `resource`, the other
-- object columns ''. Absent objectRef fields are ''.
CREATE TABLE access (
    endpoint_id INTEGER NOT NULL,              -- 0: not mapped to an endpoint
    identity_id INTEGER NOT NULL,
    url         INTEGER NOT NULL,
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    verb        TEXT NOT NULL,
    subresource TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    hits        INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, identity_id, url, api_group, resource, namespace, verb, subresource, user_id)
) STRICT, WITHOUT ROWID;

-- Per (endpoint, identity, purpose) the reads and writes of objects `deps` joins: requests of a
-- resource with verb get, list, watch, create, update, patch, delete or deletecollection. Read
-- for the lines of code of the edges `deps` keeps.
CREATE TABLE object_uses (
    endpoint_id INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    purpose_id  INTEGER NOT NULL,              -- 0: none
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    verb        TEXT NOT NULL,
    hits        INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, identity_id, purpose_id, api_group, resource, namespace, verb)
) STRICT, WITHOUT ROWID;

-- Rebuild from the requests the rollups already count: those up to their endpoint's mark.
INSERT INTO access (endpoint_id, identity_id, url, api_group, resource, namespace, verb,
                    subresource, user_id, hits)
SELECT COALESCE(r.endpoint_id, 0), r.identity_id, r.resource IS NULL,
       CASE WHEN r.resource IS NULL THEN '' ELSE COALESCE(r.api_group, '') END,
       CASE WHEN r.resource IS NOT NULL THEN r.resource
            WHEN instr(r.request_uri, '?') > 0 THEN substr(r.request_uri, 1, instr(r.request_uri, '?') - 1)
            ELSE r.request_uri END,
       CASE WHEN r.resource IS NULL THEN '' ELSE COALESCE(r.namespace, '') END, r.verb,
       CASE WHEN r.resource IS NULL THEN '' ELSE COALESCE(r.subresource, '') END, COALESCE(r.impersonated_user_id, r.user_id, 0), COUNT(*)
FROM requests r LEFT JOIN rollup_marks m ON m.endpoint_id = COALESCE(r.endpoint_id, 0)
WHERE r.identity_id IS NOT NULL
  AND r.id <= max((SELECT folded_through FROM rollup_state), COALESCE(m.folded_through, 0))
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;

INSERT INTO object_uses (endpoint_id, identity_id, purpose_id, api_group, resource, namespace,
                         verb, hits)
SELECT COALESCE(r.endpoint_id, 0), r.identity_id, COALESCE(r.purpose_id, 0),
       COALESCE(r.api_group, ''), r.resource, COALESCE(r.namespace, ''), r.verb, COUNT(*)
FROM requests r LEFT JOIN rollup_marks m ON m.endpoint_id = COALESCE(r.endpoint_id, 0)
WHERE r.identity_id IS NOT NULL AND r.resource IS NOT NULL
  AND r.verb IN ('get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection')
  AND r.id <= max((SELECT folded_through FROM rollup_state), COALESCE(m.folded_through, 0))
GROUP BY 1, 2, 3, 4, 5, 6, 7;
