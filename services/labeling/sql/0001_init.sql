COMMENT ON SCHEMA labeling IS 'The labeling service: projects, datasets, items, leases and labels. Owned by labelloop-labeling; other services read it only through its API or documented views.';
