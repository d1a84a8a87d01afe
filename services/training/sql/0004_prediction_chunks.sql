-- Predictions as packed chunks instead of one real[] row per item: PostgreSQL encoding
-- and decoding a million arrays took ~10 s of every models.ready → live order in ranking;
-- a chunk of up to 65,536 rows is two bytea values read as they are stored.
-- Layout (common/prediction_chunks): item_ids is row_count little-endian int64, ascending,
-- every id of chunk k below every id of chunk k+1; probabilities is row_count × n_classes
-- little-endian float32, row-major in the model's class order (n_classes =
-- cardinality(models.classes)).
CREATE TABLE training.prediction_chunks (
  model_id      bigint  NOT NULL REFERENCES training.models (id) ON DELETE CASCADE,
  chunk         integer NOT NULL,        -- 0, 1, 2, … in item order
  first_item_id bigint  NOT NULL,
  last_item_id  bigint  NOT NULL,
  row_count     integer NOT NULL,
  item_ids      bytea   NOT NULL,
  probabilities bytea   NOT NULL,
  PRIMARY KEY (model_id, chunk));

CREATE VIEW training.v_prediction_chunks AS
  SELECT c.model_id, m.project_id, c.chunk, c.first_item_id, c.last_item_id, c.row_count,
         c.item_ids, c.probabilities
  FROM training.prediction_chunks c JOIN training.models m ON m.id = c.model_id;

-- The old per-item rows are not converted: predictions are derived data that training
-- recomputes from the stored model. Models that had them go back to predictions_ready =
-- false (readers only use models with predictions_ready, which must have chunks), and the
-- job of each project's latest such model goes back to PENDING with its model kept, so a
-- worker predicts again without retraining (a claimed job that has a model only predicts)
-- and announces models.ready as usual.
UPDATE training.jobs j
SET state = 'PENDING', attempts = 0, claimed_by = NULL, lease_until = NULL, finished_at = NULL,
    message = 'predicting again: predictions are now stored as packed chunks'
FROM (SELECT DISTINCT ON (project_id) job_id, project_id FROM training.models
      WHERE predictions_ready ORDER BY project_id, version DESC) latest
WHERE j.id = latest.job_id AND j.state = 'SUCCEEDED'
  AND NOT EXISTS (SELECT 1 FROM training.jobs l
                  WHERE l.project_id = latest.project_id AND l.state IN ('PENDING', 'RUNNING'));
UPDATE training.models SET predictions_ready = false WHERE predictions_ready;

DROP VIEW training.v_predictions;
DROP TABLE training.predictions;
