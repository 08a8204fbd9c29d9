-- Query rollups, kept current by store/rollup.rs inside each batch's transaction: aggregated in
-- memory per batch, one upsert per distinct key. Ids are 0 where the request has none, so every
-- key column is NOT NULL and keys compare as keys.

-- Requests per (endpoint, identity, test, purpose, verb, status code): what every query without
-- a time window reads. Endpoint-first, so one endpoint is a range and all of them a scan in order.
CREATE TABLE usage (
    endpoint_id INTEGER NOT NULL,              -- 0: not mapped to an endpoint
    identity_id INTEGER NOT NULL,
    test_id     INTEGER NOT NULL,
    purpose_id  INTEGER NOT NULL,
    verb        TEXT NOT NULL,
    code        INTEGER NOT NULL,              -- 0: no response seen (yet)
    hits        INTEGER NOT NULL,
    first_us    INTEGER NOT NULL,              -- earliest requestReceivedTimestamp, unix µs
    last_us     INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, identity_id, test_id, purpose_id, verb, code)
) STRICT, WITHOUT ROWID;

-- From a line of code to what it reaches (loc, search). Only new keys touch it.
CREATE INDEX usage_by_purpose ON usage (purpose_id);

-- Per endpoint: what coverage needs, answered without reading `usage`.
CREATE TABLE endpoint_usage (
    endpoint_id  INTEGER PRIMARY KEY,
    hits         INTEGER NOT NULL,
    test_hits    INTEGER NOT NULL,             -- from a test
    conf_hits    INTEGER NOT NULL,             -- from a conformance test
    ok_hits      INTEGER NOT NULL,             -- the same, 2xx only
    ok_test_hits INTEGER NOT NULL,
    ok_conf_hits INTEGER NOT NULL
) STRICT;

-- Per ingest run and endpoint: history.
CREATE TABLE run_usage (
    run_id      INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    hits        INTEGER NOT NULL,
    test_hits   INTEGER NOT NULL,
    conf_hits   INTEGER NOT NULL,
    PRIMARY KEY (run_id, endpoint_id)
) STRICT, WITHOUT ROWID;

-- Rebuild from whatever requests a version-1 database already holds.
INSERT INTO usage (endpoint_id, identity_id, test_id, purpose_id, verb, code, hits, first_us, last_us)
SELECT COALESCE(endpoint_id, 0), COALESCE(identity_id, 0), COALESCE(test_id, 0),
       COALESCE(purpose_id, 0), verb, COALESCE(status_code, 0), COUNT(*),
       MIN(received_us), MAX(received_us)
FROM requests GROUP BY 1, 2, 3, 4, 5, 6;

INSERT INTO endpoint_usage
SELECT r.endpoint_id, COUNT(*),
       SUM(r.test_id IS NOT NULL), SUM(COALESCE(t.conformance, 0)),
       SUM(r.status_code BETWEEN 200 AND 299),
       SUM(r.test_id IS NOT NULL AND r.status_code BETWEEN 200 AND 299),
       SUM(COALESCE(t.conformance, 0) AND r.status_code BETWEEN 200 AND 299)
FROM requests r LEFT JOIN tests t ON t.id = r.test_id
WHERE r.endpoint_id IS NOT NULL GROUP BY r.endpoint_id;

INSERT INTO run_usage
SELECT r.run_id, r.endpoint_id, COUNT(*), SUM(r.test_id IS NOT NULL), SUM(COALESCE(t.conformance, 0))
FROM requests r LEFT JOIN tests t ON t.id = r.test_id
WHERE r.endpoint_id IS NOT NULL GROUP BY r.run_id, r.endpoint_id;
