-- Distinct apps, tests and lines of code per endpoint, kept current at ingest so `endpoints`
-- answers without reading `usage`. Store/rollup.rs inserts a pair only when a batch creates a
-- new `usage` key, and counts it in endpoint_usage when the pair is new.

CREATE TABLE endpoint_apps (
    endpoint_id INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, identity_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE endpoint_tests (
    endpoint_id INTEGER NOT NULL,
    test_id     INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, test_id)
) STRICT, WITHOUT ROWID;

-- Purpose-first: a purpose whose frames change (the side channel's full stack) finds its
-- endpoints here and adds its new frames to their lines of code.
CREATE TABLE endpoint_purposes (
    purpose_id  INTEGER NOT NULL,
    endpoint_id INTEGER NOT NULL,
    PRIMARY KEY (purpose_id, endpoint_id)
) STRICT, WITHOUT ROWID;

-- Every line of code ever on a stack that reached the endpoint.
CREATE TABLE endpoint_locs (
    endpoint_id INTEGER NOT NULL,
    frame_id    INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, frame_id)
) STRICT, WITHOUT ROWID;

ALTER TABLE endpoint_usage ADD COLUMN apps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint_usage ADD COLUMN tests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE endpoint_usage ADD COLUMN locs INTEGER NOT NULL DEFAULT 0;

INSERT INTO endpoint_apps
SELECT DISTINCT endpoint_id, identity_id FROM usage WHERE endpoint_id <> 0 AND identity_id <> 0;
INSERT INTO endpoint_tests
SELECT DISTINCT endpoint_id, test_id FROM usage WHERE endpoint_id <> 0 AND test_id <> 0;
INSERT INTO endpoint_purposes
SELECT DISTINCT purpose_id, endpoint_id FROM usage WHERE endpoint_id <> 0 AND purpose_id <> 0;
INSERT INTO endpoint_locs
SELECT DISTINCT ep.endpoint_id, pf.frame_id
FROM endpoint_purposes ep JOIN purpose_frames pf ON pf.purpose_id = ep.purpose_id;
UPDATE endpoint_usage SET
    apps = (SELECT COUNT(*) FROM endpoint_apps a WHERE a.endpoint_id = endpoint_usage.endpoint_id),
    tests = (SELECT COUNT(*) FROM endpoint_tests t WHERE t.endpoint_id = endpoint_usage.endpoint_id),
    locs = (SELECT COUNT(*) FROM endpoint_locs l WHERE l.endpoint_id = endpoint_usage.endpoint_id);
