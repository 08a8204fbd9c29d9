-- Purposes whose program could not name its frames (built without debug info): the
-- side-channel record as it came, with its module addresses, kept until `symbolize` resolves
-- them against the build's debug file. The purpose itself is stored incomplete meanwhile.
CREATE TABLE purpose_addresses (
    purpose_id INTEGER PRIMARY KEY REFERENCES purposes(id),
    record     TEXT NOT NULL                   -- the record's JSON line
) STRICT;
