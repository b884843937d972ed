"""Central slices of 3D volumes and point-group symmetrisation.

Conventions
-----------
* A volume is a ``(S, S, S)`` tensor (or a ``(B, S, S, S)`` batch) indexed
  ``[z, y, x]``; voxel ``k`` along an axis sits at the centred coordinate
  ``k - (S - 1) / 2``, so odd ``S`` puts the origin (``q = 0``) on the central voxel.
* The slice at rotation ``R`` is the image ``P[i, j] = V(R (x_j, y_i, 0))`` with
  ``x_j = j - (S-1)/2`` along columns and ``y_i = i - (S-1)/2`` down the rows:
  the slice plane is spanned by the rotated x axis (``R[:, 0]``, image columns)
  and the rotated y axis (``R[:, 1]``, image rows); ``R[:, 2]`` is the beam. At
  ``R = I`` the slice is ``V[(S-1)/2]``, the central z plane.
* Values are trilinearly interpolated with ``grid_sample`` and are zero outside
  the volume. All functions are differentiable with respect to the volume.
* Symmetry: ``symmetrize_volume(V, G)(v) = mean_g V(g v)``. Its slice at ``R``
  is ``mean_g V(g R p)``, i.e. the mean of the slices at ``g R``, which is what
  :func:`symmetrized_slices` computes without ever building the symmetrised
  volume (``|G| N S^2`` samples instead of ``|G| S^3``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checks import as_tensor, check_finite
from .groups import point_group
from .so3 import check_rotations

__all__ = [
    "center_volume",
    "check_volume",
    "sample_volumes",
    "slice_coordinates",
    "slice_volume",
    "symmetrize_volume",
    "symmetrized_slices",
    "volume_coordinates",
]


def check_volume(volume, name: str = "volume", require_odd: bool = True) -> torch.Tensor:
    """Validate a cubic volume ``(S, S, S)`` or batch ``(B, S, S, S)``.

    Raises
    ------
    ValueError
        Wrong number of dimensions, non-cubic, NaN/Inf, or even ``S`` when
        ``require_odd`` (the origin must sit on a voxel).
    """
    v = as_tensor(volume, name=name, dtype=None)
    if not v.is_floating_point():
        v = v.float()
    if v.dim() not in (3, 4):
        raise ValueError(f"{name}: expected (S, S, S) or (B, S, S, S), got {tuple(v.shape)}")
    s = v.shape[-3:]
    if not (s[0] == s[1] == s[2]):
        raise ValueError(f"{name}: expected a cubic volume, got spatial shape {tuple(s)}")
    if require_odd and s[0] % 2 == 0:
        raise ValueError(
            f"{name}: size {s[0]} is even; the centre (q = 0) must be a voxel. Recentre it "
            "with pyrolatent.primitives.volumes.center_volume (odd size out)"
        )
    check_finite(v, name)
    return v


def _centred(size: int, dtype, device) -> torch.Tensor:
    return torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2


def slice_coordinates(size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """``(S, S, 3)`` points ``(x_j, y_i, 0)`` of the unrotated slice plane, in voxels."""
    c = _centred(size, dtype, device)
    y, x = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([x, y, torch.zeros_like(x)], dim=-1)


def volume_coordinates(size: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """``(S, S, S, 3)`` voxel centres ``(x, y, z)`` of a volume indexed ``[z, y, x]``."""
    c = _centred(size, dtype, device)
    z, y, x = torch.meshgrid(c, c, c, indexing="ij")
    return torch.stack([x, y, z], dim=-1)


def _sample(volume: torch.Tensor, points: torch.Tensor, shared: bool) -> torch.Tensor:
    """Trilinear samples of ``volume`` at ``points`` (voxel units, (x, y, z)).

    ``shared``: one volume ``(S,S,S)`` and points ``(N, ...,3)``; otherwise
    volumes ``(N,S,S,S)`` and points ``(N, ..., 3)``.
    """
    size = volume.shape[-1]
    grid = points * (2.0 / size)  # align_corners=False: index k <-> (2k + 1)/S - 1
    if shared:
        n, rest = grid.shape[0], grid.shape[1:-1]
        g = grid.reshape(1, n, -1, 1, 3)
        out = F.grid_sample(volume[None, None], g, mode="bilinear", align_corners=False)
        return out.reshape((n,) + tuple(rest))
    n, rest = grid.shape[0], grid.shape[1:-1]
    g = grid.reshape(n, 1, -1, 1, 3)
    out = F.grid_sample(volume[:, None], g, mode="bilinear", align_corners=False)
    return out.reshape((n,) + tuple(rest))


def sample_volumes(volumes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Trilinear samples of ``K`` volumes at the same points (differentiable).

    Parameters
    ----------
    volumes : torch.Tensor
        ``(K, S, S, S)`` indexed ``[z, y, x]``.
    points : torch.Tensor
        ``(..., 3)`` positions ``(x, y, z)`` in voxels about the centre (as
        :func:`slice_coordinates`); outside the volume the value is 0.

    Returns
    -------
    torch.Tensor
        ``(K, ...)``.
    """
    size = volumes.shape[-1]
    grid = (points * (2.0 / size)).to(volumes.dtype).reshape(1, 1, -1, 1, 3)
    out = F.grid_sample(volumes[None], grid, mode="bilinear", align_corners=False)
    return out.reshape((volumes.shape[0],) + tuple(points.shape[:-1]))


def _slice(
    volume: torch.Tensor, rotations: torch.Tensor, pattern_size: int | None = None
) -> torch.Tensor:
    size = volume.shape[-1]
    if pattern_size is None:
        plane = slice_coordinates(size, dtype=volume.dtype, device=volume.device)
    else:  # the same range of the volume, sampled at (S - 1) / (T - 1) voxels per pixel
        plane = slice_coordinates(pattern_size, dtype=volume.dtype, device=volume.device)
        plane = plane * ((size - 1) / (pattern_size - 1))
    pts = torch.einsum("nab,ijb->nija", rotations.to(volume.dtype), plane)
    if volume.dim() == 3:
        return _sample(volume, pts, shared=True)
    if volume.shape[0] == 1 and rotations.shape[0] != 1:
        return _sample(volume[0], pts, shared=True)
    return _sample(volume, pts, shared=False)


def _check_pair(volume, rotations):
    v = check_volume(volume)
    r = check_rotations(rotations).to(dtype=v.dtype, device=v.device)
    if r.dim() != 3:
        raise ValueError(f"rotations: expected (N, 3, 3), got {tuple(r.shape)}")
    if v.dim() == 4 and v.shape[0] not in (1, r.shape[0]):
        raise ValueError(
            f"volume: a batch of {v.shape[0]} volumes needs 1 or {v.shape[0]} rotations, "
            f"got {r.shape[0]}"
        )
    return v, r


def slice_volume(volume, rotations, pattern_size: int | None = None) -> torch.Tensor:
    """Central slices of a volume at a batch of rotations.

    Parameters
    ----------
    volume : array_like
        ``(S, S, S)`` indexed ``[z, y, x]`` (odd ``S``), or ``(N, S, S, S)``
        for one volume per rotation (or ``(1, S, S, S)``).
    rotations : array_like
        ``(N, 3, 3)`` orthonormal matrices; the slice plane is spanned by
        ``R[:, 0]`` (image columns, x) and ``R[:, 1]`` (image rows, y).
    pattern_size : int, optional
        Odd slice size ``T``. The slice spans the same range of the volume,
        ``[-(S - 1) / 2, (S - 1) / 2]`` voxels along each image axis, with
        ``(S - 1) / (T - 1)`` voxels per pixel (e.g. an ``oversample``-times
        finer volume of ``S = oversample (T - 1) + 1`` sliced at the pixels of a
        ``T``-pixel detector). Default ``S`` (one voxel per pixel).

    Returns
    -------
    torch.Tensor
        ``(N, T, T)`` slices; ``P[n, i, j] = V(R_n (x_j, y_i, 0))`` with
        ``x_j = (j - (T - 1) / 2) (S - 1) / (T - 1)`` voxels (and ``y_i`` alike).

    Raises
    ------
    ValueError
        Non-orthonormal rotations, even/non-cubic volume, batch mismatch, an
        even or smaller-than-3 ``pattern_size``.
    """
    v, r = _check_pair(volume, rotations)
    if pattern_size is not None:
        if isinstance(pattern_size, bool) or int(pattern_size) != pattern_size:
            raise ValueError(f"pattern_size: expected an odd integer, got {pattern_size!r}")
        pattern_size = int(pattern_size)
        if pattern_size < 3 or pattern_size % 2 == 0:
            raise ValueError(
                f"pattern_size: expected an odd size >= 3 (the centre must be a pixel), "
                f"got {pattern_size}"
            )
    return _slice(v, r, pattern_size=pattern_size)


def _group_matrices(group, dtype, device) -> torch.Tensor:
    if isinstance(group, str):
        return point_group(group, dtype=dtype, device=device)
    g = check_rotations(group, name="group")
    if g.dim() != 3:
        raise ValueError(f"group: expected a name or (G, 3, 3) matrices, got {tuple(g.shape)}")
    return g.to(dtype=dtype, device=device)


def symmetrized_slices(volume, rotations, group) -> torch.Tensor:
    """Slices of the ``group``-symmetrised volume, without symmetrising the volume.

    Returns ``mean_g slice_volume(volume, g R)``, which equals
    ``slice_volume(symmetrize_volume(volume, group), R)`` (exactly, for groups of
    signed permutations such as ``"O"``/``"Oh"``, because trilinear interpolation
    commutes with them; to interpolation error otherwise).

    Parameters
    ----------
    volume : array_like
        ``(S, S, S)`` or ``(N, S, S, S)``.
    rotations : array_like
        ``(N, 3, 3)``.
    group : str or array_like
        Name (see :func:`pyrolatent.primitives.groups.point_group`) or ``(G, 3, 3)``.

    Returns
    -------
    torch.Tensor
        ``(N, S, S)``.
    """
    v, r = _check_pair(volume, rotations)
    g = _group_matrices(group, v.dtype, v.device)
    n, n_g, size = r.shape[0], g.shape[0], v.shape[-1]
    gr = g[None] @ r[:, None]  # (N, G, 3, 3)
    plane = slice_coordinates(size, dtype=v.dtype, device=v.device)
    pts = torch.einsum("ngab,ijb->ngija", gr, plane)  # (N, G, S, S, 3)
    if v.dim() == 4 and v.shape[0] == n and n != 1:
        # one volume per rotation: its G planes are sampled in one grid_sample call
        slices = _sample(v, pts, shared=False)
    else:
        shared = v if v.dim() == 3 else v[0]
        slices = _sample(shared, pts.reshape(n * n_g, size, size, 3), shared=True)
        slices = slices.reshape(n, n_g, size, size)
    return slices.mean(dim=1)


def _signed_permutation(m: torch.Tensor):
    """``(perm, signs)`` if ``m`` is a signed permutation matrix, else ``None``."""
    a = m.abs()
    if not bool(((a - a.round()).abs() < 1e-6).all()) or not bool(
        (a.round().sum(0) == 1).all() and (a.round().sum(1) == 1).all()
    ):
        return None
    perm = a.argmax(dim=1).tolist()  # (g v)_a = s_a * v_perm[a]
    signs = [float(torch.sign(m[i, perm[i]])) for i in range(3)]
    return perm, signs


def _apply_signed_permutation(v: torch.Tensor, perm, signs) -> torch.Tensor:
    """``W[z, y, x] = V(g (x, y, z))`` exactly, by flips and transposes."""
    # coordinate index a in (x, y, z) <-> tensor dim -1 - a
    # W(p) = V(g p): component a of the sampling point is s_a * p_{perm[a]}
    # so V's axis a is read along W's axis perm[a], reversed when s_a < 0.
    dims_v = [-1, -2, -3]  # x, y, z tensor dims
    flip = [dims_v[a] for a in range(3) if signs[a] < 0]
    w = v.flip(flip) if flip else v
    # now W'(p)[axis a] = p_{perm[a]}: permute so W's axis perm[a] comes from V's axis a
    order = [0, 0, 0]  # order[tensor position of W] = tensor position of V
    for a in range(3):
        order[2 - perm[a]] = 2 - a
    lead = list(range(w.dim() - 3))
    return w.permute(*lead, *[len(lead) + o for o in order])


def symmetrize_volume(volume, group) -> torch.Tensor:
    """Average a volume over a point group: ``W(v) = mean_g V(g v)``.

    Signed-permutation elements (all of ``"O"``, ``"Oh"``, ``"T"``, ``"D2"``, ``"C2"``,
    ``"C4"``) are applied exactly with flips and transposes; other elements by
    trilinear resampling (zero outside the volume).

    Parameters
    ----------
    volume : array_like
        ``(S, S, S)`` or ``(B, S, S, S)``, odd ``S``.
    group : str or array_like
        Name or ``(G, 3, 3)`` matrices.

    Returns
    -------
    torch.Tensor
        Same shape as ``volume``.
    """
    v = check_volume(volume)
    g = _group_matrices(group, v.dtype, v.device)
    batched = v.dim() == 4
    vb = v if batched else v[None]
    size = v.shape[-1]
    acc = torch.zeros_like(vb)
    pts = None
    for m in g:
        sp = _signed_permutation(m)
        if sp is not None:
            acc = acc + _apply_signed_permutation(vb, *sp)
            continue
        if pts is None:
            pts = volume_coordinates(size, dtype=v.dtype, device=v.device).reshape(-1, 3)
        moved = (pts @ m.T).reshape(1, size, size, size, 3)
        acc = acc + _sample(vb, moved.expand(vb.shape[0], -1, -1, -1, -1), shared=False)
    out = acc / g.shape[0]
    return out if batched else out[0]


def center_volume(volume, center: str = "fft") -> torch.Tensor:
    """Make an even-sized volume odd with ``q = 0`` on the central voxel.

    Parameters
    ----------
    volume : array_like
        ``(S, S, S)`` (or ``(B, S, S, S)``) with even ``S``; an odd-sized volume
        is returned unchanged (as a float tensor).
    center : {"fft", "between"}
        Where the even volume has its origin:

        * ``"fft"``: on voxel ``S / 2`` (the ``numpy.fft.fftshift`` layout, and
          that of most EMC codes). The result has size ``S + 1``: the missing
          planes at ``+S/2`` are filled from their Friedel mates ``I(q) = I(-q)``
          (exact for intensities), so no value is interpolated; the few edge
          voxels with ``+S/2`` along one axis and ``-S/2`` along another have no
          mate in the input and are 0.
        * ``"between"``: between the two central voxels, at ``(S - 1) / 2``. The
          volume is resampled trilinearly half a voxel off along each axis
          (each output voxel is the mean of 8 input voxels) to size ``S - 1``.

    Returns
    -------
    torch.Tensor
        Odd-sized volume(s) with the origin on voxel ``(S' - 1) / 2``.
    """
    v = check_volume(volume, require_odd=False)
    size = v.shape[-1]
    if size % 2 == 1:
        return v
    if center == "fft":
        lead = v.shape[:-3]
        out = torch.zeros(lead + (size + 1,) * 3, dtype=v.dtype, device=v.device)
        out[..., :size, :size, :size] = v
        filled = torch.zeros((size + 1,) * 3, dtype=torch.bool, device=v.device)
        filled[:size, :size, :size] = True
        mirrored = out.flip((-1, -2, -3))  # index i -> S - i: q -> -q about voxel S / 2
        return torch.where(filled, out, mirrored)
    if center == "between":
        return (
            v[..., :-1, :-1, :-1] + v[..., 1:, :-1, :-1] + v[..., :-1, 1:, :-1]
            + v[..., :-1, :-1, 1:] + v[..., 1:, 1:, :-1] + v[..., 1:, :-1, 1:]
            + v[..., :-1, 1:, 1:] + v[..., 1:, 1:, 1:]
        ) / 8  # fmt: skip
    raise ValueError(f"center: expected 'fft' or 'between', got {center!r}")
