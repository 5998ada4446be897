"""How well a model does and why: scores, subject-wise splits, permutation importance,
occlusion explanations and the training report. Uses io, model and data."""
