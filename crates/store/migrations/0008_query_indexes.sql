-- Every person name group is indexed, so that a name query (an OR over the three groups)
-- is answered by SQLite's multi-index OR rather than a scan of the studies in listing order.
CREATE INDEX IF NOT EXISTS studies_pn_phonetic ON studies(pn_phonetic);

-- The number of studies, kept by triggers: the worklist's unfiltered total (its first page)
-- is read here instead of counting the archive.
CREATE TABLE index_counts (name TEXT PRIMARY KEY NOT NULL, n INTEGER NOT NULL);
INSERT INTO index_counts (name, n) SELECT 'studies', count(*) FROM studies;
CREATE TRIGGER studies_count_insert AFTER INSERT ON studies BEGIN
    UPDATE index_counts SET n = n + 1 WHERE name = 'studies';
END;
CREATE TRIGGER studies_count_delete AFTER DELETE ON studies BEGIN
    UPDATE index_counts SET n = n - 1 WHERE name = 'studies';
END;
