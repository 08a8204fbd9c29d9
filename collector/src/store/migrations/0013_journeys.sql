-- The journeys rollup (store/journeys.rs): each client's episodes folded in as requests arrive,
-- so `journeys` and `suggest` look support counts up instead of mining every request (which
-- requests are counted: the invariant in store/journeys.rs); `stale` says a request or a call
-- stack came that the counts cannot take in order (they are counted again from `requests` at
-- the next full fold, and queries scan meanwhile). A database from before starts at 0: the
-- writer's first fold counts what it already holds.
CREATE TABLE journey_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    lo           INTEGER NOT NULL,              -- requests up to this id are counted
    hi           INTEGER NOT NULL,              -- up to this one, those received by the watermark
    watermark_us INTEGER NOT NULL,
    stale        INTEGER NOT NULL
) STRICT;

INSERT INTO journey_state (id, lo, hi, watermark_us, stale)
VALUES (1, 0, 0, -9223372036854775808, 0);

-- Apps (COALESCE(identities.name, identities.text)) and purposes (function names) by id.
CREATE TABLE journey_names (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
) STRICT;

-- A client (as `journeys` cuts episodes: identity, user, source IPs, test, within the release
-- of the endpoints it calls) and its open episode: the time of its last request, its last
-- endpoints (up to max length - 1, little-endian i32 ids) and the functions every call stack
-- of the episode so far passes through, innermost first ('\n'-separated; NULL: no stack yet).
CREATE TABLE journey_clients (
    id          INTEGER PRIMARY KEY,
    release_id  INTEGER NOT NULL,
    identity_id INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    source_ips  TEXT NOT NULL,
    test_id     INTEGER NOT NULL,
    last_us     INTEGER NOT NULL,
    tail        BLOB NOT NULL,
    common      TEXT,
    UNIQUE (release_id, identity_id, user_id, source_ips, test_id)
) STRICT;

-- The sequences the open episode of each client has counted (each once per episode).
CREATE TABLE journey_open (
    client_id INTEGER NOT NULL,
    sequence  BLOB NOT NULL,
    PRIMARY KEY (client_id, sequence)
) STRICT, WITHOUT ROWID;

-- Episodes per (release, app, purpose, endpoint sequence of 2 to 4 ids).
CREATE TABLE journey_support (
    release_id INTEGER NOT NULL,
    app_id     INTEGER NOT NULL,
    purpose_id INTEGER NOT NULL,
    sequence   BLOB NOT NULL,
    episodes   INTEGER NOT NULL,
    PRIMARY KEY (release_id, app_id, purpose_id, sequence)
) STRICT, WITHOUT ROWID;

-- What `journeys` reads by default (support of at least 2): most sequences of a varied log
-- appear in one episode only.
CREATE INDEX journey_frequent ON journey_support (release_id, episodes) WHERE episodes >= 2;

-- The functions of each call stack as the counts used them: a stack that changes later (the
-- side channel completing a cut user agent) makes the counts stale.
CREATE TABLE journey_stacks (
    purpose_id INTEGER PRIMARY KEY,
    functions  TEXT NOT NULL
) STRICT;
