"""Point-in-time features, one code path for training and serving."""
