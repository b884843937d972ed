"""pyrolatent: probabilistic latent-variable analysis of microscopy and diffraction images."""

__version__ = "0.1.0"
