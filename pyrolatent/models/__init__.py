"""pyrolatent.models."""
