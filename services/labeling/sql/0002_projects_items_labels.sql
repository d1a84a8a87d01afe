-- Projects, items, annotator leases and labels. Everything the labeling service owns.

CREATE TABLE projects (
  id                  bigserial PRIMARY KEY,
  name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  instructions        text NOT NULL DEFAULT '',
  data_kind           text NOT NULL CHECK (data_kind IN ('tabular', 'text', 'image')),
  label_kind          text NOT NULL CHECK (label_kind IN ('single', 'multi')),
  classes             text[] NOT NULL,
  judgements_per_item integer NOT NULL DEFAULT 1 CHECK (judgements_per_item BETWEEN 1 AND 50),
  feature_dim         integer,                      -- fixed by the first ingestion
  validators          jsonb NOT NULL DEFAULT '{}',  -- see validators in the README
  settings            jsonb NOT NULL DEFAULT '{}',  -- e.g. {"retrain_every": 100, "strategy": "entropy"}
  status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived', 'complete')),
  created_by          text NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

-- status: 'unlabeled' until judgements = the project's judgements_per_item, then 'labeled'.
CREATE TABLE items (
  id            bigserial PRIMARY KEY,
  project_id    bigint NOT NULL REFERENCES projects (id),
  external_id   text NOT NULL,
  sample_ts     timestamptz,
  text_payload  text,
  row_payload   jsonb,
  image         bytea,
  image_format  text,
  features      real[] NOT NULL,
  status        text NOT NULL DEFAULT 'unlabeled' CHECK (status IN ('unlabeled', 'labeled')),
  judgements    integer NOT NULL DEFAULT 0,
  consensus     text[],            -- class names of the consensus label, once labeled
  consensus_tie boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, external_id)
);
-- Oldest-first hand-out of unlabeled items; the index stays small as items get labeled.
CREATE INDEX items_unlabeled_idx ON items (project_id, id) WHERE status = 'unlabeled';
CREATE INDEX items_project_status_idx ON items (project_id, status, id);

-- At most one live lease per (item, annotator); several annotators may hold one item
-- only when judgements_per_item > 1. expires_at in the past = expired.
CREATE TABLE leases (
  item_id     bigint NOT NULL REFERENCES items (id),
  project_id  bigint NOT NULL,
  annotator   text NOT NULL,
  token       uuid NOT NULL UNIQUE,
  claimed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  expires_at  timestamptz NOT NULL,
  PRIMARY KEY (item_id, annotator)
);
CREATE INDEX leases_project_annotator_idx ON leases (project_id, annotator);

-- Every lease ever granted and how it ended, so exclusivity can be audited.
CREATE TABLE lease_history (
  id          bigserial PRIMARY KEY,
  item_id     bigint NOT NULL,
  project_id  bigint NOT NULL,
  annotator   text NOT NULL,
  token       uuid NOT NULL,
  claimed_at  timestamptz NOT NULL,
  expires_at  timestamptz NOT NULL,
  ended_at    timestamptz,
  outcome     text CHECK (outcome IN ('submitted', 'released', 'skipped', 'expired'))
);
CREATE INDEX lease_history_item_idx ON lease_history (item_id);

-- The current label of each (item, annotator); relabels update it and add history.
CREATE TABLE labels (
  id             bigserial PRIMARY KEY,
  item_id        bigint NOT NULL REFERENCES items (id),
  project_id     bigint NOT NULL,
  annotator      text NOT NULL,
  classes        text[] NOT NULL,
  seconds_spent  real NOT NULL DEFAULT 0,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  UNIQUE (item_id, annotator)
);
CREATE INDEX labels_project_idx ON labels (project_id, created_at);

CREATE TABLE label_history (
  id           bigserial PRIMARY KEY,
  item_id      bigint NOT NULL,
  project_id   bigint NOT NULL,
  annotator    text NOT NULL,
  old_classes  text[],
  new_classes  text[] NOT NULL,
  changed_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE skips (
  id          bigserial PRIMARY KEY,
  item_id     bigint NOT NULL,
  project_id  bigint NOT NULL,
  annotator   text NOT NULL,
  reason      text NOT NULL DEFAULT '',
  skipped_at  timestamptz NOT NULL DEFAULT now()
);

-- Published read-only views: the contract other services (training, ranking,
-- dl_manager) read for bulk data. Columns are only ever added, never changed.
CREATE VIEW v_projects AS
  SELECT id AS project_id, name, data_kind, label_kind, classes, judgements_per_item,
         feature_dim, settings, status, created_at
  FROM projects;

-- labels: the consensus class names of a labeled item, NULL while unlabeled.
CREATE VIEW v_items AS
  SELECT id AS item_id, project_id, external_id, sample_ts, features,
         status = 'labeled' AS labeled, consensus AS labels, created_at
  FROM items;

-- One row per (item, annotator) label, for exports.
CREATE VIEW v_labels AS
  SELECT l.item_id, l.project_id, i.external_id, i.sample_ts, l.annotator, l.classes,
         l.seconds_spent, l.created_at, l.updated_at
  FROM labels l JOIN items i ON i.id = l.item_id;
