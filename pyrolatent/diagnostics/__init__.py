"""Diagnostics: ArviZ conversion and summaries."""

from .inference_data import rvae_to_inference_data

__all__ = ["rvae_to_inference_data"]
