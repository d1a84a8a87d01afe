-- Persisted scores as packed chunks instead of one row per item: a 1,000,000-item order
-- is 16 rows, written and read back in a fraction of the time (no per-row array encoding).
DROP TABLE item_scores;

-- item_ids: little-endian int64 per item (ascending); scores: little-endian float32, four
-- per item in the order least_confidence, margin, entropy, random (see ranking.proto).
CREATE TABLE score_chunks (
  project_id  bigint NOT NULL,
  model_id    bigint NOT NULL,
  chunk       integer NOT NULL,
  items       integer NOT NULL,
  item_ids    bytea NOT NULL,
  scores      bytea NOT NULL,
  PRIMARY KEY (project_id, chunk)
);
