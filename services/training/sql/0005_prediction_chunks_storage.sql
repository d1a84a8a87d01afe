-- Store the packed chunks out of line as they are (TOAST without compression): pglz
-- worked through every multi-megabyte chunk when it was written, two thirds of
-- training's write time for 1,000,000 × 10 (1.6 s → 0.5 s in bench/ranking), for little
-- gain on float32 bytes; reading them back costs about the same either way.
ALTER TABLE training.prediction_chunks ALTER COLUMN item_ids SET STORAGE EXTERNAL;
ALTER TABLE training.prediction_chunks ALTER COLUMN probabilities SET STORAGE EXTERNAL;
