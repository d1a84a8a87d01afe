-- The ranking service's own state: per-project strategy settings and the persisted
-- scores of the live order (so a restart rebuilds it without rescoring).

-- Overrides labeling.v_projects.settings "strategy" / "multilabel_aggregate".
CREATE TABLE project_strategy (
  project_id            bigint PRIMARY KEY,
  strategy              text NOT NULL
                        CHECK (strategy IN ('least_confidence', 'margin', 'entropy', 'random',
                                            'batch_diverse')),
  multilabel_aggregate  text CHECK (multilabel_aggregate IN ('mean', 'max')),
  updated_at            timestamptz NOT NULL DEFAULT now()
);

-- The order last built per project: which model, aggregate and seed its scores are from.
CREATE TABLE orders (
  project_id            bigint PRIMARY KEY,
  model_id              bigint NOT NULL,
  model_version         integer NOT NULL,
  multi_label           boolean NOT NULL,
  multilabel_aggregate  text NOT NULL,
  random_seed           bigint NOT NULL,
  items                 bigint NOT NULL,
  rejected_items        bigint NOT NULL,
  built_at              timestamptz NOT NULL DEFAULT now()
);

-- scores: [least_confidence, margin, entropy, random] of one item (see ranking.proto).
CREATE TABLE item_scores (
  project_id  bigint NOT NULL,
  model_id    bigint NOT NULL,
  item_id     bigint NOT NULL,
  scores      real[] NOT NULL,
  PRIMARY KEY (project_id, item_id)
);
