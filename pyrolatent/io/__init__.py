"""Input and output: lazy readers for user movie formats (pixel size, frame time)."""
