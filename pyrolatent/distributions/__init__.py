"""pyrolatent.distributions."""
