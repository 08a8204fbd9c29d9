-- Core schema. Append-only: never edit a migration once released; add NNNN_*.sql instead.
-- Foreign keys are documentation (not enforced) so the ingest path pays for none of them.

CREATE TABLE releases (
    id          INTEGER PRIMARY KEY,
    label       TEXT NOT NULL UNIQUE,          -- e.g. '1.36.0'
    spec_sha256 TEXT NOT NULL,                 -- of the OpenAPI document as loaded
    spec_gz     BLOB NOT NULL,                 -- the document, gzipped: `serve` maps without it
    ineligible  TEXT,                          -- APISnoop's ineligible list (JSON) used, if any
    loaded_at   TEXT NOT NULL                  -- RFC 3339
) STRICT;

CREATE TABLE endpoints (
    id                INTEGER PRIMARY KEY,
    release_id        INTEGER NOT NULL REFERENCES releases(id),
    idx               INTEGER NOT NULL,        -- position in the catalog (the mapper's index)
    operation_id      TEXT NOT NULL,
    method            TEXT NOT NULL,           -- get, put, post, delete, patch, head, options
    path              TEXT NOT NULL,
    level             TEXT NOT NULL,           -- alpha, beta, stable
    category          TEXT NOT NULL,
    api_group         TEXT NOT NULL,           -- '' for the core group
    version           TEXT NOT NULL,
    kind              TEXT NOT NULL,
    action            TEXT NOT NULL,
    deprecated        INTEGER NOT NULL,
    eligible          INTEGER NOT NULL,        -- conformance eligible
    ineligible_reason TEXT,
    UNIQUE (release_id, operation_id),
    UNIQUE (release_id, idx)
) STRICT;

CREATE TABLE identities (
    id            INTEGER PRIMARY KEY,
    text          TEXT NOT NULL UNIQUE,        -- the identity as sent (the whole UA if unparsed)
    name          TEXT,
    version       TEXT,
    os            TEXT,
    arch          TEXT,
    source        TEXT,
    source_commit TEXT,
    built_by      TEXT,
    built_at      TEXT
) STRICT;

CREATE TABLE tests (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    sig         TEXT,                          -- 'sig-node' from '[sig-node]'
    conformance INTEGER NOT NULL,              -- '[Conformance]' in the name
    tags        TEXT NOT NULL                  -- JSON array of the other '[...]' tags
) STRICT;

CREATE TABLE frames (
    id       INTEGER PRIMARY KEY,
    function TEXT NOT NULL,
    file     TEXT NOT NULL,
    line     INTEGER NOT NULL,
    UNIQUE (function, file, line)
) STRICT;

CREATE TABLE purposes (
    id          INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,          -- 16 lowercase hex digits
    identity_id INTEGER REFERENCES identities(id),
    test_id     INTEGER REFERENCES tests(id),
    span        TEXT,
    complete    INTEGER NOT NULL,              -- 1: frames from the side channel, all of them
    seen_at     TEXT
) STRICT;

CREATE TABLE purpose_frames (
    purpose_id INTEGER NOT NULL REFERENCES purposes(id),
    depth      INTEGER NOT NULL,               -- 0 = innermost (the kube-rs API method)
    frame_id   INTEGER NOT NULL REFERENCES frames(id),
    PRIMARY KEY (purpose_id, depth)
) STRICT, WITHOUT ROWID;

CREATE INDEX purpose_frames_by_frame ON purpose_frames (frame_id);

CREATE TABLE users (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    groups TEXT NOT NULL,                      -- JSON array, as in the audit event
    UNIQUE (name, groups)
) STRICT;

CREATE TABLE ingest_runs (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,                 -- 'ingest' or 'serve'
    source      TEXT NOT NULL,                 -- paths, or the listen address
    release_id  INTEGER REFERENCES releases(id),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    events      INTEGER NOT NULL DEFAULT 0,
    requests    INTEGER NOT NULL DEFAULT 0,    -- new requests stored
    upgrades    INTEGER NOT NULL DEFAULT 0,    -- requests moved to a more complete stage
    duplicates  INTEGER NOT NULL DEFAULT 0,    -- events that changed nothing
    malformed   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- One row per API request. No secondary index: it would cost the write path most of its speed;
-- what queries need fast is kept in rollups or indexed after ingest.
CREATE TABLE requests (
    id                   INTEGER PRIMARY KEY,
    run_id               INTEGER NOT NULL REFERENCES ingest_runs(id),
    audit_id             TEXT NOT NULL,
    received_us          INTEGER NOT NULL,     -- requestReceivedTimestamp, unix microseconds
    stage                INTEGER NOT NULL,     -- 0 RequestReceived, 1 ResponseStarted, 2 ResponseComplete, 3 Panic
    stage_us             INTEGER,              -- stageTimestamp of that stage, unix microseconds
    latency_us           INTEGER,              -- stage_us - received_us
    verb                 TEXT NOT NULL,
    request_uri          TEXT NOT NULL,
    release_id           INTEGER REFERENCES releases(id),
    endpoint_id          INTEGER REFERENCES endpoints(id),
    mapping              TEXT NOT NULL,        -- 'endpoint', 'non_resource', 'unmapped:<reason>'
    namespace            TEXT,
    resource             TEXT,
    subresource          TEXT,
    name                 TEXT,
    api_group            TEXT,
    api_version          TEXT,
    user_id              INTEGER REFERENCES users(id),
    impersonated_user_id INTEGER REFERENCES users(id),
    source_ips           TEXT,                 -- comma-separated, as listed in the event
    status_code          INTEGER,
    identity_id          INTEGER REFERENCES identities(id),
    purpose_id           INTEGER REFERENCES purposes(id),
    test_id              INTEGER REFERENCES tests(id)
) STRICT;

-- The dedupe index of requests: 63-bit hash of (audit_id, received_us) -> request. A hit is
-- checked against the request row itself, and a collision probes key + 1.
CREATE TABLE request_keys (
    key        INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL
) STRICT;

CREATE TABLE malformed (
    id     INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES ingest_runs(id),
    source TEXT NOT NULL,                      -- file path, '-', or 'POST /audit'
    line   INTEGER,                            -- 1-based, when the input has lines
    reason TEXT NOT NULL
) STRICT;
