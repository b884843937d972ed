"""pyrolatent.segmentation."""
