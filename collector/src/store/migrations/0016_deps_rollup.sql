-- What `deps` joins, kept with `object_uses` (store/rollup.rs writes both from the same
-- deltas): each program's reads and writes of a resource per namespace, a hundred thousand
-- rows where `access` holds near a million at 10M requests, and each program's requests. By
-- app (the identity's name, else its text), as `deps` answers: the builds of one program, or a
-- client that sends another user agent every time, add no rows.

-- Per (group, resource, app, namespace): the reads (get, list, watch) and writes (create,
-- update, patch, delete, deletecollection) of its objects; `object_uses` summed over identity,
-- endpoint, purpose and verb. Namespace '': cluster-scoped, or across all namespaces.
CREATE TABLE object_access (
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    app         TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    reads       INTEGER NOT NULL,
    writes      INTEGER NOT NULL,
    PRIMARY KEY (api_group, resource, app, namespace)
) STRICT, WITHOUT ROWID;

-- Per app: its requests, all of them (`access` summed).
CREATE TABLE app_requests (
    app  TEXT PRIMARY KEY,
    hits INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- `object_uses` by object first: the lines of code of one program's use of a resource are one
-- range of it.
CREATE TABLE object_uses_by_object (
    endpoint_id INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    purpose_id  INTEGER NOT NULL,
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    verb        TEXT NOT NULL,
    hits        INTEGER NOT NULL,
    PRIMARY KEY (api_group, resource, identity_id, endpoint_id, purpose_id, namespace, verb)
) STRICT, WITHOUT ROWID;

INSERT INTO object_uses_by_object
SELECT endpoint_id, identity_id, purpose_id, api_group, resource, namespace, verb, hits
FROM object_uses ORDER BY api_group, resource, identity_id, endpoint_id, purpose_id, namespace, verb;
DROP TABLE object_uses;
ALTER TABLE object_uses_by_object RENAME TO object_uses;

INSERT INTO object_access (api_group, resource, app, namespace, reads, writes)
SELECT u.api_group, u.resource, COALESCE(i.name, i.text), u.namespace,
       SUM(CASE WHEN u.verb IN ('get', 'list', 'watch') THEN u.hits ELSE 0 END),
       SUM(CASE WHEN u.verb IN ('get', 'list', 'watch') THEN 0 ELSE u.hits END)
FROM object_uses u JOIN identities i ON i.id = u.identity_id GROUP BY 1, 2, 3, 4;

INSERT INTO app_requests (app, hits)
SELECT COALESCE(i.name, i.text), SUM(a.hits) FROM access a JOIN identities i ON i.id = a.identity_id
GROUP BY 1;
