"""Models: the feature matrix, the rule baseline, LightGBM scorers, training and the registry."""
