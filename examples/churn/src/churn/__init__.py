"""Code shared by the churn pipeline's stages: the table's schema, the features (one
definition for training and for scoring), drift measures and the model registry."""
