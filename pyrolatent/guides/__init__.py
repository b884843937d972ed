"""pyrolatent.guides."""
