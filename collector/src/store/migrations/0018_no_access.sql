-- `access` (migration 15) counted requests per (endpoint, identity, object or URL, verb, user)
-- and was read by nothing but the writer: a new key told it which accesses `access_grants`
-- (migration 17) had not seen, and a remap took its hits out of `app_requests`. The fold now
-- offers every pending access to `access_grants`, whose primary key keeps each once, and a
-- remap takes the hits out from `usage`, which counts the same requests. With every user agent
-- distinct each request added a row to it.
DROP TABLE access;
