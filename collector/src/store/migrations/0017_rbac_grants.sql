-- What `apps --rbac` answers from, kept as requests arrive (store/rbac.rs). RBAC rules are a
-- function of the set of accesses alone, not of their counts or endpoints, so the set is kept
-- apart from `access`, by app (the identities' name, else text, as `object_access`): an
-- app's accesses are a range of it, however many builds or user agents it came with. Only a
-- new `access` key can add to it (store/rollup.rs inserts a key before it updates one). Each
-- app's answer is kept rendered in `rbac_apps`; an app that gained an access is listed in
-- `rbac_stale` until a fold derives it again, and a query derives a stale app itself.

-- The distinct accesses of `access` by app, without endpoint or hits (columns as there).
CREATE TABLE access_grants (
    app         TEXT NOT NULL,
    url         INTEGER NOT NULL,
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    subresource TEXT NOT NULL,
    namespace   TEXT NOT NULL,
    verb        TEXT NOT NULL,
    user_id     INTEGER NOT NULL,
    PRIMARY KEY (app, url, api_group, resource, subresource, namespace, verb, user_id)
) STRICT, WITHOUT ROWID;

-- Apps that gained an access since their `rbac_apps` row was derived.
CREATE TABLE rbac_stale (
    app TEXT PRIMARY KEY NOT NULL
) STRICT, WITHOUT ROWID;

-- Per app (the identities' name, else text): its `apps --rbac` element as the Query API
-- prints it, pretty JSON indented as an element of the answer's array.
CREATE TABLE rbac_apps (
    app  TEXT PRIMARY KEY NOT NULL,
    json TEXT NOT NULL
) STRICT;

INSERT INTO access_grants (app, url, api_group, resource, subresource, namespace, verb, user_id)
SELECT DISTINCT COALESCE(i.name, i.text), a.url, a.api_group, a.resource, a.subresource,
       a.namespace, a.verb, a.user_id
FROM access a JOIN identities i ON i.id = a.identity_id;

INSERT INTO rbac_stale (app) SELECT DISTINCT app FROM access_grants;
