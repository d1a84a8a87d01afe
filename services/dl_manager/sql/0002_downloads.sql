-- Download requests, their builds and the archives (as ~1 MiB chunk rows).
--
-- A request is claimed with a lease (claimed_by, lease_until) by one replica at a
-- time; every claim is one row in builds, so "built exactly once" can be audited.
-- Status: REQUESTED -> BUILDING -> AVAILABLE | FAILED (BUILDING with an expired
-- lease is claimable again; attempts are bounded by max_attempts).

CREATE TABLE downloads (
  id            bigserial PRIMARY KEY,
  project_id    bigint NOT NULL,
  model_id      bigint NOT NULL,
  -- The label state the request was made at (see storage/download_store.cpp).
  fingerprint   text NOT NULL,
  requested_by  text NOT NULL DEFAULT '',
  status        text NOT NULL DEFAULT 'REQUESTED'
                CHECK (status IN ('REQUESTED', 'BUILDING', 'AVAILABLE', 'FAILED')),
  attempts      integer NOT NULL DEFAULT 0,
  max_attempts  integer NOT NULL DEFAULT 3,
  claimed_by    text,
  lease_until   timestamptz,
  phase         text NOT NULL DEFAULT '',
  rows_written  bigint NOT NULL DEFAULT 0,
  message       text NOT NULL DEFAULT '',
  build_id      bigint,                 -- the build whose archive is stored
  size_bytes    bigint,
  sha256        text,
  chunk_size    integer,
  entry_counts  jsonb NOT NULL DEFAULT '{}',
  manifest      jsonb,
  created_at    timestamptz NOT NULL DEFAULT now(),
  started_at    timestamptz,
  finished_at   timestamptz
);
-- One live request per (project, model, label state): the dedupe key.
CREATE UNIQUE INDEX downloads_live_key ON downloads (project_id, model_id, fingerprint)
  WHERE status IN ('REQUESTED', 'BUILDING', 'AVAILABLE');
CREATE INDEX downloads_claimable_idx ON downloads (id) WHERE status IN ('REQUESTED', 'BUILDING');
CREATE INDEX downloads_project_idx ON downloads (project_id, id);

-- Every claim of a request: who built it, when, and how it ended.
CREATE TABLE builds (
  id           bigserial PRIMARY KEY,
  download_id  bigint NOT NULL REFERENCES downloads (id) ON DELETE CASCADE,
  attempt      integer NOT NULL,
  worker       text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  outcome      text CHECK (outcome IN ('AVAILABLE', 'FAILED', 'RETRY', 'RELEASED', 'LOST')),
  message      text NOT NULL DEFAULT ''
);
CREATE INDEX builds_download_idx ON builds (download_id);

-- The archive of a build, in order. Written in the same transaction that marks the
-- download AVAILABLE, so a crashed build leaves no chunks behind.
CREATE TABLE archive_chunks (
  build_id  bigint NOT NULL REFERENCES builds (id) ON DELETE CASCADE,
  seq       integer NOT NULL,
  data      bytea NOT NULL,
  PRIMARY KEY (build_id, seq)
);
-- Chunks are already deflated: do not let TOAST try to compress them again.
ALTER TABLE archive_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
