-- Kubernetes' conformance metadata of a release (kubernetes/kubernetes
-- test/conformance/testdata/): the pending eligible list beside the ineligible one, each
-- endpoint's description and pending state, and the release's conformance tests.

ALTER TABLE releases ADD COLUMN pending TEXT;  -- pending_eligible_endpoints.yaml used, if any

ALTER TABLE endpoints ADD COLUMN description TEXT;                  -- the operation's, from the spec
ALTER TABLE endpoints ADD COLUMN pending INTEGER NOT NULL DEFAULT 0; -- would be eligible; listed pending

-- conformance.yaml of the release, one row per test; a request's test is a conformance test of
-- the release when its name equals a codename.
CREATE TABLE conformance_tests (
    release_id        INTEGER NOT NULL REFERENCES releases(id),
    codename          TEXT NOT NULL,           -- the Ginkgo name, as in the e2e user agent
    testname          TEXT NOT NULL,
    description       TEXT NOT NULL,
    release           TEXT NOT NULL,           -- as written: 'v1.9', 'v1.21, v1.35'
    promotion_release TEXT NOT NULL,           -- as APISnoop reads it: '1.35.0'
    file              TEXT NOT NULL,           -- e.g. test/e2e/apps/deployment.go
    PRIMARY KEY (release_id, codename)
) STRICT, WITHOUT ROWID;
