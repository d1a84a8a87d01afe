-- Auto-retraining policy: the spec automatic jobs use, and NULL retrain_every meaning
-- "not set here" (then the labeling project's settings.retrain_every applies).
ALTER TABLE project_training ADD COLUMN spec jsonb NOT NULL DEFAULT '{}';
ALTER TABLE project_training ALTER COLUMN retrain_every DROP NOT NULL;
ALTER TABLE project_training ALTER COLUMN retrain_every SET DEFAULT NULL;
CREATE INDEX jobs_project_idx ON jobs (project_id, id);
