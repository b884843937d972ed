"""An ordered chain of 3D classes for a continuously deformed particle.

A 3D classification (:func:`~pyrolatent.spi.emc.local_emc` with ``classes > 1``)
of frames whose particle deforms continuously splits them into classes with no
order, and each class's intensity is the average of frames from a range of
conformations. :func:`class_chain` turns such a result into ``C`` classes that
follow the deformation in order:

1. **Ends.** Of the classes holding at least half their share of frames, the
   two least alike (Pearson correlation of the shell-normalised intensities,
   ``2 <= |q| <= 3/4`` of the edge) are taken as the ends ``I_a``, ``I_b``.
2. **Start.** Class ``c`` starts at ``exp((1 - t_c) log I_a + t_c log I_b)``
   for ``t_c`` evenly spaced on ``[-extend, 1 + extend]`` (the ends of a
   classification are averages, not the extremes of the deformation).
3. **Iterations** of local EMC with these ``C`` intensities (equal class
   weights, no class annealing, each frame's search centred on its posterior
   mean orientation). After each M-step every class intensity is replaced by
   the weighted mean of its chain neighbours (Gaussian in the class index,
   weights the class fractions), the width falling linearly from ``smoothing``
   to 0 three iterations before the end, so neighbours stay alike while the
   frames sort themselves along the chain.

A frame's position on the chain (:func:`chain_position`) is its posterior mean
class index: a coarse deformation coordinate, and the class intensities (in
order) are a start for :func:`~pyrolatent.estimators.volume_init.fit_decoder_to_volumes`.

Measured on 2,000 frames of 4BED stretched continuously by 1-1.25 (10^4
photons, 25^3, ``benchmarks/volume_vae_pdb.py``), started from a 6-class
``local_emc`` (orientations 3.07 / 2.78 deg from the truth, seeds 0 / 1), 8
classes, 12 iterations: ``|Spearman(position, stretch)|`` 0.72 / 0.77,
orientations 2.88 / 2.60 deg (the frames at the two ends of the stretch 4-5
deg: their classes average over a range of stretches; the classes' mean
stretch runs 10-41 of 0-50).
"""

from __future__ import annotations

import os

import torch
from tqdm.auto import tqdm

from ...io.checkpoint import load_checkpoint, save_checkpoint
from ...primitives.volumes import volume_coordinates
from .local import LocalEMCResult, local_emc

__all__ = ["chain_ends", "chain_position", "class_chain"]


def _shell_normalised(volumes: torch.Tensor) -> torch.Tensor:
    """``(C, M)`` float64 voxels with ``2 <= |q| <= 3/4`` of the edge over their shell means."""
    size = volumes.shape[-1]
    r = volume_coordinates(size, dtype=torch.float64).norm(dim=-1)
    keep = (r >= 2.0) & (r <= 0.75 * (size - 1) / 2)
    shell = r[keep].round().long()
    v = volumes.double().reshape(volumes.shape[0], -1)[:, keep.flatten()]
    count = torch.bincount(shell).clamp_min(1).double()
    mean = torch.zeros(volumes.shape[0], count.numel(), dtype=torch.float64)
    mean.index_add_(1, shell, v)
    return v / (mean / count).clamp_min(1e-30)[:, shell]


def chain_ends(volumes, weights) -> tuple[int, int]:
    """Indices of the two least alike classes among those with at least half their share.

    Parameters
    ----------
    volumes : torch.Tensor
        ``(C, S, S, S)`` class intensities, ``C >= 2``.
    weights : torch.Tensor
        ``(C,)`` class weights (fractions of the frames).

    Returns
    -------
    tuple of int
        ``(a, b)``, ``a < b``.
    """
    volumes = torch.as_tensor(volumes)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if volumes.dim() != 4 or volumes.shape[0] < 2 or weights.shape != (volumes.shape[0],):
        raise ValueError("chain_ends: expected (C, S, S, S) volumes with C >= 2 and (C,) weights, "
                         f"got {tuple(volumes.shape)} and {tuple(weights.shape)}")  # fmt: skip
    big = torch.nonzero(weights >= 0.5 / len(weights)).flatten()
    if len(big) < 2:  # one dominant class: compare them all
        big = torch.arange(len(weights))
    x = _shell_normalised(volumes[big])
    x = x - x.mean(1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-30)
    i, j = divmod(int((x @ x.T).argmin()), len(big))
    a, b = sorted((int(big[i]), int(big[j])))
    return a, b


def chain_position(result: LocalEMCResult) -> torch.Tensor:
    """``(N,)`` each frame's posterior mean class index (``0 .. C-1``) on a :func:`class_chain`."""
    p = result.class_probability.double()
    return (p * torch.arange(p.shape[1], dtype=torch.float64)).sum(1)


def _smooth(volumes: torch.Tensor, weights: torch.Tensor, width: float) -> torch.Tensor:
    """Each class intensity replaced by the weighted mean of its chain neighbours."""
    if width <= 0:
        return volumes
    idx = torch.arange(volumes.shape[0], dtype=torch.float64)
    h = torch.exp(-0.5 * (idx[:, None] - idx[None]) ** 2 / width**2) * weights.double()[None]
    h = h / h.sum(1, keepdim=True)
    return torch.einsum("kj,j...->k...", h, volumes.double()).to(volumes.dtype)


def class_chain(frames, detector, init: LocalEMCResult, classes: int = 8, iterations: int = 12,
                smoothing: float = 1.5, extend: float = 0.25, radius: float = 0.06,
                spacing: float = 0.02, checkpoint: str | None = None, progress: bool = True,
                device=None) -> LocalEMCResult:  # fmt: skip
    """Order the 3D classes of a continuously deforming particle into a chain (module notes).

    Parameters
    ----------
    frames : PhotonFrames or frame source
        The ``N`` frames that ``init`` was run on.
    detector : Detector
        Pixel geometry.
    init : LocalEMCResult
        A classified :func:`~pyrolatent.spi.emc.local_emc` result (``classes >= 2``):
        its class intensities give the ends, its orientations and scales the start.
    classes : int
        Classes ``C`` on the chain (>= 3); default 8.
    iterations : int
        Local EMC iterations (>= 4); default 12.
    smoothing : float
        Starting width of the neighbour smoothing, in classes; default 1.5.
    extend : float
        How far past the two ends the start interpolates, as a fraction of the
        distance between them; default 0.25.
    radius, spacing : float
        The local orientation search (radians), as in
        :func:`~pyrolatent.spi.emc.local_emc`; defaults 0.06 and 0.02.
    checkpoint : str, optional
        File for the state after each iteration; a run with the same settings
        resumes from it.
    progress : bool
        Show a progress bar.
    device : str or torch.device, optional
        See :func:`pyrolatent.device.resolve_device`.

    Returns
    -------
    LocalEMCResult
        ``volume`` ``(C, S, S, S)`` in chain order, the last iteration's
        orientations (posterior means), scales and class posteriors; see
        :func:`chain_position`.

    Raises
    ------
    ValueError
        ``init`` not a classified local EMC result, ``classes < 3``,
        ``iterations < 4``, a negative ``smoothing`` or ``extend``, or a
        checkpoint made with other settings.
    """
    if not isinstance(init, LocalEMCResult) or init.volume.dim() != 4:
        raise ValueError("init: expected a LocalEMCResult of local_emc(..., classes >= 2)")
    if int(classes) < 3 or int(iterations) < 4:
        raise ValueError(f"classes >= 3 and iterations >= 4 expected, got {classes}, {iterations}")
    if smoothing < 0 or extend < 0:
        raise ValueError(f"smoothing and extend: expected >= 0, got {smoothing}, {extend}")
    if len(frames) != init.rotation.shape[0]:
        raise ValueError(f"frames: {len(frames)} frames, init has {init.rotation.shape[0]}")
    c_num, n_it = int(classes), int(iterations)
    config = {"classes": c_num, "iterations": n_it, "smoothing": float(smoothing),
              "extend": float(extend), "radius": float(radius), "spacing": float(spacing),
              "num_frames": len(frames)}  # fmt: skip
    a, b = chain_ends(init.volume, init.class_weights)
    log_a = init.volume[a].double().clamp_min(1e-9).log()
    log_b = init.volume[b].double().clamp_min(1e-9).log()
    ts = torch.linspace(-float(extend), 1 + float(extend), c_num, dtype=torch.float64)
    volumes = torch.stack([torch.exp(log_a + t * (log_b - log_a)) for t in ts]).float()
    rot, scales, done, res = init.rotation, init.scales, 0, None
    if checkpoint is not None and os.path.exists(checkpoint):
        state = load_checkpoint(checkpoint)
        if state["config"] != config:
            raise ValueError(f"checkpoint {checkpoint}: made with {state['config']}, not {config}")
        volumes, done, res = state["volume"], int(state["iteration"]), state["result"]
        rot, scales = res["rotation"], res["scales"]
    for it in tqdm(range(done, n_it), disable=not progress, desc="class chain", unit="it"):
        res = local_emc(frames, detector, (volumes, rot, scales), iterations=1, classes=c_num,
                        class_beta=1.0, radius=radius, spacing=spacing, progress=False,
                        device=device)  # fmt: skip
        width = max(float(smoothing) * (1 - it / max(n_it - 3, 1)), 0.0)
        volumes = _smooth(res.volume, res.class_weights, width)
        rot, scales = res.rotation, res.scales
        if checkpoint is not None:
            save_checkpoint({"config": config, "iteration": it + 1, "volume": volumes,
                             "result": _as_state(res)}, checkpoint)  # fmt: skip
    if isinstance(res, dict):
        res = LocalEMCResult(**res)
    return res


def _as_state(res: LocalEMCResult) -> dict:
    """The fields of a result, for a checkpoint (tensors, numbers and lists only)."""
    return {k: getattr(res, k) for k in res.__dataclass_fields__}
