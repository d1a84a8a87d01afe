-- Training jobs (a durable queue claimed with leases), models and predictions.

CREATE TABLE jobs (
  id             bigserial PRIMARY KEY,
  project_id     bigint NOT NULL,
  spec           jsonb NOT NULL,             -- the model spec with defaults filled in
  state          text NOT NULL DEFAULT 'PENDING'
                 CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED')),
  attempts       integer NOT NULL DEFAULT 0,
  max_attempts   integer NOT NULL DEFAULT 3,
  claimed_by     text,
  lease_until    timestamptz,
  epoch          integer NOT NULL DEFAULT 0,
  epochs         integer NOT NULL DEFAULT 0,
  cancel_requested boolean NOT NULL DEFAULT false,
  message        text NOT NULL DEFAULT '',
  model_id       bigint,
  trigger        text NOT NULL DEFAULT 'manual',  -- manual | auto
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz
);
CREATE INDEX jobs_claimable_idx ON jobs (created_at) WHERE state IN ('PENDING', 'RUNNING');
-- Never two live jobs for the same project.
CREATE UNIQUE INDEX jobs_one_live_per_project ON jobs (project_id)
  WHERE state IN ('PENDING', 'RUNNING');

CREATE TABLE job_epochs (
  job_id          bigint NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  epoch           integer NOT NULL,
  train_loss      double precision NOT NULL,
  train_accuracy  double precision NOT NULL,
  val_loss        double precision NOT NULL,
  val_accuracy    double precision NOT NULL,
  recorded_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, epoch)
);

-- model_json: the portable form (spec, standardisation, classes, weights), documented in
-- services/training/README.md; model_proto: the same as a serialized labelloop.v1.Model.
CREATE TABLE models (
  id            bigserial PRIMARY KEY,
  project_id    bigint NOT NULL,
  version       integer NOT NULL,
  job_id        bigint REFERENCES jobs (id),
  model_type    text NOT NULL,
  multi_label   boolean NOT NULL,
  classes       text[] NOT NULL,
  model_json    jsonb NOT NULL,
  model_proto   bytea,
  metrics       jsonb NOT NULL DEFAULT '{}',
  labeled_items integer NOT NULL DEFAULT 0,
  predictions_ready boolean NOT NULL DEFAULT false,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, version)
);

-- Class probabilities (in the model's class order) per unlabeled item.
CREATE TABLE predictions (
  model_id       bigint NOT NULL REFERENCES models (id) ON DELETE CASCADE,
  item_id        bigint NOT NULL,
  probabilities  real[] NOT NULL,
  PRIMARY KEY (model_id, item_id)
);

-- Auto-retraining bookkeeping: labels seen since the last job per project.
CREATE TABLE project_training (
  project_id        bigint PRIMARY KEY,
  retrain_every     integer NOT NULL DEFAULT 0,   -- 0 = off
  labels_at_last_job bigint NOT NULL DEFAULT 0
);

-- Published read-only views (the contract for ranking and dl_manager).
CREATE VIEW v_models AS
  SELECT id AS model_id, project_id, version, model_type, multi_label, classes, model_json,
         metrics, labeled_items, predictions_ready, created_at
  FROM models;

CREATE VIEW v_predictions AS
  SELECT p.model_id, m.project_id, p.item_id, p.probabilities
  FROM predictions p JOIN models m ON m.id = p.model_id;
