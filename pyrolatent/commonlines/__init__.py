"""pyrolatent.commonlines."""
