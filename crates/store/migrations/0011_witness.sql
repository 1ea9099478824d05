-- What this node, as a witness of other nodes' ledgers (issue 12), last cosigned of each
-- log (C2SP tlog-witness): it cosigns only checkpoints that extend this one.
CREATE TABLE witness_state (
    origin TEXT    PRIMARY KEY,
    size   INTEGER NOT NULL,
    root   BLOB    NOT NULL CHECK (length(root) = 32)
);
