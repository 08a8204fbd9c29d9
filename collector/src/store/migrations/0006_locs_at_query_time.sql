-- Lines of code per endpoint are counted at query time from endpoint_purposes ⋈ purpose_frames
-- instead of being folded into endpoint_locs: a new (purpose, endpoint) pair cost the write path
-- one upsert per frame of the purpose (550k per 1M events of a log with many call paths, half of
-- every fold), and the count now follows a purpose's frames when they are replaced.
DROP TABLE endpoint_locs;
ALTER TABLE endpoint_usage DROP COLUMN locs;
