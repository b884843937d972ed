"""pyrolatent.nn."""
