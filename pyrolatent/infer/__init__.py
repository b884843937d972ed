"""pyrolatent.infer."""
