"""pyrolatent.plot."""
