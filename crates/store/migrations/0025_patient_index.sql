-- The consortium patient index (issue 13), PIX-style: each hospital's patient ID, qualified
-- by the node that issued it (this node's id for its own patients, the origin member's id
-- for studies shared with this node), mapped to one consortium patient ID. A link is made
-- only explicitly: assigned by the node that issues the patient ID when it first shares a
-- study of the patient, learnt from a share, set by a user, or by the configured matching
-- rule; never silently by demographics. A link is never changed (a wrong one is a matter
-- for the consortium's patient administration).
CREATE TABLE patient_xref (
    issuer         TEXT NOT NULL,
    patient_id     TEXT NOT NULL,
    consortium_id  TEXT NOT NULL,
    how            TEXT NOT NULL,            -- assigned | share | manual | rule:<name>
    linked_by      TEXT NOT NULL,            -- user, member id or rule
    created_ms     INTEGER NOT NULL,
    PRIMARY KEY (issuer, patient_id)
);
CREATE INDEX patient_xref_consortium ON patient_xref (consortium_id);

-- The consortium patient a member's share notice named, until its instances arrive.
CREATE TABLE grant_patients (
    origin         TEXT NOT NULL,
    share_id       TEXT NOT NULL,
    consortium_id  TEXT NOT NULL,
    PRIMARY KEY (origin, share_id)
);

-- How many instances the origin's notice announced, so that the recipient can say what has
-- not arrived yet (while the origin is unreachable, say).
ALTER TABLE grants ADD COLUMN expected_instances INTEGER;
