"""pyrolatent.data.synthetic."""
