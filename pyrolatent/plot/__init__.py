"""Matplotlib figures; every function returns the Figure and never calls plt.show()."""

from .latents import plot_history, plot_latent_distributions, plot_manifold

__all__ = ["plot_history", "plot_latent_distributions", "plot_manifold"]
