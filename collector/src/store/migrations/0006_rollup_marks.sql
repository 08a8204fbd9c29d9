-- Rollups may be folded a range of endpoints at a time (store/rollup.rs): a fold then writes a
-- slice of the endpoint-first rollup pages instead of pages all over them. A request of
-- endpoint e (0: none) is counted in the rollups if and only if its id is at most
-- max(rollup_state.folded_through, rollup_marks.folded_through of e); a fold of everything
-- moves the global mark and empties this table.
CREATE TABLE rollup_marks (
    endpoint_id    INTEGER PRIMARY KEY,
    folded_through INTEGER NOT NULL
) STRICT;
