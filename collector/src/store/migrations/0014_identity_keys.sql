-- Identities are found by `key`, a 63-bit hash of their text (store/key.rs `identity_key`),
-- no longer by the text itself: a UNIQUE index on the text put every new identity's whole text
-- (up to a user agent's 1 KiB) at a random place in a B-tree as large as the texts, which a
-- log where each request brings another user agent rewrote page by page. The text is kept,
-- unindexed; an 8-byte key's index stays small enough to be cached. Keys may collide: a
-- lookup compares the texts of the rows it finds.
--
-- Rebuilt (SQLite cannot drop a UNIQUE constraint), ids unchanged. `key` is filled in by the
-- step in migrate.rs that runs right after this file, in the same transaction (SQL has no
-- hash to compute it with); it is NULL nowhere after.
CREATE TABLE identities_keyed (
    id            INTEGER PRIMARY KEY,
    key           INTEGER,
    text          TEXT NOT NULL,               -- the identity as sent (the whole UA if unparsed)
    name          TEXT,
    version       TEXT,
    os            TEXT,
    arch          TEXT,
    source        TEXT,
    source_commit TEXT,
    built_by      TEXT,
    built_at      TEXT,
    detail        TEXT
) STRICT;

INSERT INTO identities_keyed (id, text, name, version, os, arch, source, source_commit,
                              built_by, built_at, detail)
SELECT id, text, name, version, os, arch, source, source_commit, built_by, built_at, detail
FROM identities;

DROP TABLE identities;
ALTER TABLE identities_keyed RENAME TO identities;
CREATE INDEX identities_by_key ON identities (key);
