-- Rollups may be folded in after the batches they count (bulk ingest sums many batches in
-- memory first, see store/rollup.rs): every request with id <= folded_through is counted in
-- usage, endpoint_usage, run_usage and the endpoint_* tables, and none above it. Until now
-- every batch folded its own requests, so the rollups count all of them.
CREATE TABLE rollup_state (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    folded_through INTEGER NOT NULL
) STRICT;

INSERT INTO rollup_state (id, folded_through) SELECT 1, coalesce(max(id), 0) FROM requests;
