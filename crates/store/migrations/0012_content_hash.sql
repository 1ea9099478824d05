-- Content hashes: new objects are hashed with BLAKE3 (stored as 'blake3:<hex>'); rows
-- written before keep their SHA-256 values (64 hex digits), still recognised by the store.
ALTER TABLE instances RENAME COLUMN sha256 TO content_hash;
