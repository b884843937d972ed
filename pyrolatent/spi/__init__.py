"""pyrolatent.spi."""
