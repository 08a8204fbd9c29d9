-- What `deps` joins, kept with `object_uses` (store/rollup.rs writes both from the same
-- deltas): a program's reads and writes of a resource per namespace, a few hundred thousand
-- rows where `access` holds millions at 10M requests, and each program's requests.

-- Per (group, resource, identity, namespace): the reads (get, list, watch) and writes (create,
-- update, patch, delete, deletecollection) of its objects; `object_uses` summed over endpoint,
-- purpose and verb. Namespace '': cluster-scoped, or across all namespaces.
CREATE TABLE object_access (
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    identity_id INTEGER NOT NULL,
    namespace   TEXT NOT NULL,
    reads       INTEGER NOT NULL,
    writes      INTEGER NOT NULL,
    PRIMARY KEY (api_group, resource, identity_id, namespace)
) STRICT, WITHOUT ROWID;

-- Per identity: its requests, all of them (`access` summed).
CREATE TABLE identity_requests (
    identity_id INTEGER PRIMARY KEY,
    hits        INTEGER NOT NULL
) STRICT;

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

INSERT INTO object_access (api_group, resource, identity_id, namespace, reads, writes)
SELECT api_group, resource, identity_id, namespace,
       SUM(CASE WHEN verb IN ('get', 'list', 'watch') THEN hits ELSE 0 END),
       SUM(CASE WHEN verb IN ('get', 'list', 'watch') THEN 0 ELSE hits END)
FROM object_uses GROUP BY 1, 2, 3, 4;

INSERT INTO identity_requests (identity_id, hits)
SELECT identity_id, SUM(hits) FROM access GROUP BY 1;
