-- CI builds read from GCS (Prow job artifacts): one row per build, with the ingest run its
-- requests are stored in, and the objects read from it (so a later run reads only new ones).

CREATE TABLE ci_runs (
    run_id      INTEGER PRIMARY KEY REFERENCES ingest_runs(id),
    bucket      TEXT NOT NULL,
    prefix      TEXT NOT NULL,                 -- the build's directory: logs/JOB/BUILD/
    job         TEXT,                          -- NULL for a prefix that is not a Prow build
    build       TEXT,
    result      TEXT,                          -- finished.json's result (NULL: not finished)
    k8s_version TEXT,                          -- finished.json metadata.job-version, or kind's
    k8s_commit  TEXT,                          -- started.json repo-commit
    started_at  TEXT,                          -- RFC 3339, from started.json
    finished_at TEXT,                          -- RFC 3339, from finished.json
    complete    INTEGER NOT NULL,              -- finished and every object read: skipped later
    UNIQUE (bucket, prefix)
) STRICT;

CREATE TABLE ci_objects (
    run_id     INTEGER NOT NULL REFERENCES ci_runs(run_id),
    name       TEXT NOT NULL,                  -- object name in the bucket
    generation TEXT NOT NULL,
    size       INTEGER NOT NULL,
    error      TEXT,                           -- why it was not read whole
    retry      INTEGER NOT NULL,               -- 1: a transport failure, read it again next run
    PRIMARY KEY (run_id, name)
) STRICT;
