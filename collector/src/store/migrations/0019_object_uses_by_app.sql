-- `object_uses` by app (the identities' name, else text, as `object_access`) instead of by
-- identity: `deps` reads the lines of code of one app's use of a resource, and the builds of
-- one program (or a client that sends another user agent every time, one row per request
-- before) share its rows. A filter that lets through some of an app's identities and not
-- others makes `deps` scan `requests`, as before.
CREATE TABLE object_uses_by_app (
    api_group   TEXT NOT NULL,
    resource    TEXT NOT NULL,
    app         TEXT NOT NULL,
    endpoint_id INTEGER NOT NULL,
    purpose_id  INTEGER NOT NULL,              -- 0: none
    namespace   TEXT NOT NULL,
    verb        TEXT NOT NULL,
    hits        INTEGER NOT NULL,
    PRIMARY KEY (api_group, resource, app, endpoint_id, purpose_id, namespace, verb)
) STRICT, WITHOUT ROWID;

INSERT INTO object_uses_by_app
SELECT u.api_group, u.resource, COALESCE(i.name, i.text), u.endpoint_id, u.purpose_id,
       u.namespace, u.verb, SUM(u.hits)
FROM object_uses u JOIN identities i ON i.id = u.identity_id
GROUP BY 1, 2, 3, 4, 5, 6, 7;
DROP TABLE object_uses;
ALTER TABLE object_uses_by_app RENAME TO object_uses;
