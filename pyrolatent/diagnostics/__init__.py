"""pyrolatent.diagnostics."""
