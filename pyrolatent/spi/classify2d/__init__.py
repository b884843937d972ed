"""EMC-style 2D classification of sparse photon frames with in-plane rotations.

Generative model of frame ``n`` (photon counts ``K_n`` on the pixels ``p`` of
the detector region: the inscribed disc minus the masked pixels)::

    class     c_n ~ Categorical(pi)                     (K classes)
    rotation  r_n ~ Uniform{theta_0 .. theta_{R-1}}       (R in-plane angles)
    K_np      ~ Poisson(phi_n * W_{c_n}(R(-theta_{r_n}) p))

``W_k`` are the class averages and ``phi_n`` a per-frame fluence scale. The
latents ``(c_n, r_n)`` are discrete and few, so their posterior is computed
*exactly* by enumerating all ``K * R`` combinations (the E-step); the M-step
then maximises the expected complete-data log-likelihood in closed form, as in
the EMC algorithm of Dragonfly (Ayyer et al. 2016):

* ``W_k(x) = sum_{n,r} P_nkr K_n(R(theta_r) x) / sum_{n,r} P_nkr phi_n M(R(theta_r) x)``
  (frames rotated back into the class frame, ``M`` the detector mask), which
  also fills the beamstop and gaps from other rotations;
* ``phi_n = sum_p K_np / sum_{k,r} P_nkr sum_p W_kr,p``;
* ``pi_k = mean_n sum_r P_nkr``.

The E-step is the exact posterior of the Pyro model :func:`classify2d_model`
(whose ``"class"`` and ``"rotation"`` sites ``TraceEnum_ELBO`` enumerates; the
tests check the two agree); the M-step is the closed-form EMC update, exact up
to the bilinear interpolation of the rotations. EM is used rather than SVI
because it converges in tens of iterations and scales to ``10^5`` frames.
Frames are streamed in batches (the input array is never converted to float as
a whole), so the working memory is ``O(batch_size K R + K R S^2 + N K)``. The
rotated class averages are precomputed once per iteration with the shared
:func:`~pyrolatent.primitives.warp.warp_images`.

EM finds local optima, so the start matters: frames are first clustered by
k-means++ on rotation-invariant features (a few alignment-only iterations keep
each frame in its cluster), the best of ``n_init`` starts is kept, and a class
that empties is refilled by splitting the most populated one.

Layout: :mod:`.classify` (the public functions), :mod:`.result`, :mod:`.model` (the
Pyro model), and the private parts ``_em`` (E-step, M-step, one EM run), ``_init``
(k-means++ start, class splitting) and ``_frames`` (checks, batched reading).
"""

from .classify import bootstrap_classify2d, classify2d, rotation_angles
from .model import classify2d_model
from .result import Classify2DResult

__all__ = [
    "Classify2DResult",
    "bootstrap_classify2d",
    "classify2d",
    "classify2d_model",
    "rotation_angles",
]
