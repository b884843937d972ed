"""pyrolatent.data."""
