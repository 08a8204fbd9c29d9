-- `loc FILE:LINE` and `loc FILE` look lines of code up by file; frames are inserted once per
-- new line of code, so the index costs ingest next to nothing.
CREATE INDEX frames_by_file ON frames (file, line);
