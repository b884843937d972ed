"""pyrolatent.analysis."""
