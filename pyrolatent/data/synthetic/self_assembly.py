"""Synthetic HS-AFM movie of rod-like proteins self-assembling, with ground truth.

The movie reproduces the system of Ziatdinov et al. (rVAE analysis of protein
self-assembly imaged by high-speed AFM):

* rods about ``rod_length`` pixels long with an aspect ratio of about 5 and a
  head/tail asymmetry (the head end is wider and brighter);
* the rods form *domains*: rigid lattices of aligned rods inside non-overlapping
  disks that diffuse and rotate slowly; isolated rods are one-site domains;
* before the planted ``transition_frame`` every domain points along one of 6
  preferred directions 60 degrees apart (directed angles 0, 60, ..., 300);
  from the transition on, the preferred directions drop to 4 (0, 90, 180, 270)
  and each domain rotates towards the nearest one over a few frames
  (symmetry lowering);
* rods land on and leave empty lattice sites (new identity on every landing);
* AFM artefacts: tip blur (Gaussian), scan-line offsets and Gaussian noise.

Angles are radians, counter-clockwise as displayed, measured from the +x axis
(along the columns) to the tail-to-head direction. Rods are rendered with an
analytic profile evaluated in each rod's own frame, obtained through the shared
:func:`pyrolatent.primitives.grids.transform_points`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ...primitives.grids import transform_points

__all__ = ["SelfAssemblyMovie", "make_self_assembly_movie", "true_links"]

DIRECTIONS_BEFORE = np.deg2rad(np.arange(0, 360, 60))
DIRECTIONS_AFTER = np.deg2rad(np.arange(0, 360, 90))


@dataclass
class SelfAssemblyMovie:
    """A generated movie and its ground truth.

    Attributes
    ----------
    frames : numpy.ndarray
        ``(T, H, W)`` float32 heights with artefacts (arbitrary units, rods ~1).
    masks : numpy.ndarray
        ``(T, H, W)`` int32 instance labels: the particle ``id`` on its pixels, 0 elsewhere.
    particles : dict of numpy.ndarray
        One row per visible particle and frame: ``frame``, ``id``, ``row``, ``col``
        (true centre, pixels), ``angle`` (directed, radians CCW in (-pi, pi]),
        ``axis_angle`` (the same modulo pi, in (-pi/2, pi/2]), ``length``, ``width``
        (mean full width, pixels) and ``domain``.
    transition_frame : int
        First frame of the symmetry lowering (6 -> 4 preferred directions).
    clean : numpy.ndarray
        ``(T, H, W)`` float32 heights before blur, scan lines and noise.
    params : dict
        The generator's parameters.
    """

    frames: np.ndarray
    masks: np.ndarray
    particles: dict
    transition_frame: int
    clean: np.ndarray
    params: dict = field(default_factory=dict)


def true_links(particles: dict) -> set[tuple[int, int, int]]:
    """Ground-truth frame-to-frame links ``(frame, id, frame + 1)`` from a particle table."""
    present = set(zip(particles["frame"].tolist(), particles["id"].tolist(), strict=True))
    return {(f, i, f + 1) for f, i in present if (f + 1, i) in present}


def _place_domains(rng, size, n_sites_wanted, spacing_u, spacing_v, reach, gap):
    """Random non-overlapping disks with lattice sites, until enough sites exist."""
    centres, radii, sites = [], [], []
    total, attempts = 0, 0
    while total < n_sites_wanted and attempts < 5000:
        attempts += 1
        if rng.random() < 0.35:
            radius = reach + 1.0  # isolated rod
        else:
            radius = rng.uniform(reach + spacing_v, reach + 2.2 * spacing_v)
        c = rng.uniform(0, size - 1, size=2) - (size - 1) / 2
        if any(np.hypot(*(c - o)) < radius + r + gap for o, r in zip(centres, radii, strict=True)):
            continue
        nu = int((radius - reach) // spacing_u)
        nv = int((radius - reach) // spacing_v)
        local = [
            (i * spacing_u, j * spacing_v + (0.5 * spacing_v if i % 2 else 0.0))
            for i in range(-nu, nu + 1)
            for j in range(-nv - 1, nv + 2)
        ]
        local = [p for p in local if math.hypot(*p) + reach <= radius] or [(0.0, 0.0)]
        centres.append(c)
        radii.append(radius)
        sites.append(np.array(local, dtype=np.float64))
        total += len(local)
    return np.array(centres), np.array(radii), sites


def _render(centres_xy, angles, size, length, width_tail, width_head, head_contrast, patch):
    """Rod heights and masks for one frame; ``centres_xy`` ``(N, 2)`` centred pixels.

    The height rises linearly along the rod from 0.75 at the tail to
    ``0.75 + head_contrast`` at the head.
    """
    n = len(angles)
    height = torch.zeros(size * size, dtype=torch.float32)
    label_index = torch.full((size * size,), -1, dtype=torch.long)
    if n == 0:
        return height.reshape(size, size), label_index.reshape(size, size)
    half = patch // 2
    centre = torch.as_tensor(centres_xy, dtype=torch.float32)
    origin = (size - 1) / 2
    base = torch.round(centre + origin)  # integer (col, row) of each rod's patch centre
    d = torch.arange(-half, half + 1, dtype=torch.float32)
    dy, dx = torch.meshgrid(d, d, indexing="ij")
    cols = base[:, 0, None, None] + dx  # (N, P, P)
    rows = base[:, 1, None, None] + dy
    rel = torch.stack([cols - origin, rows - origin], dim=-1).reshape(n, -1, 2)
    local = transform_points(
        rel, angle=torch.as_tensor(angles, dtype=torch.float32), offset=centre, inverse=True
    )
    u, v = local[..., 0], local[..., 1]
    a = length / 2
    t = ((u / a + 1) / 2).clamp(0, 1)  # 0 at the tail, 1 at the head
    b = (width_tail + (width_head - width_tail) * t) / 2
    r = ((u.abs() / a) ** 4 + (v.abs() / b) ** 4) ** 0.25
    profile = torch.sigmoid((1 - r) * 8.0) * (0.75 + head_contrast * t)
    inside = r <= 1
    ok = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    ok = ok.reshape(n, -1)
    flat = (rows * size + cols).reshape(n, -1).long()
    height.scatter_reduce_(0, flat[ok], profile[ok], reduce="amax")
    owner = torch.arange(n).reshape(n, 1).expand_as(flat)
    keep = ok & inside
    label_index[flat[keep]] = owner[keep]
    return height.reshape(size, size), label_index.reshape(size, size)


def make_self_assembly_movie(
    n_frames: int = 150,
    size: int = 256,
    n_particles: int = 40,
    transition_frame: int | None = None,
    seed: int = 0,
    rod_length: float = 22.0,
    aspect_ratio: float = 5.0,
    head_width_ratio: float = 1.4,
    head_contrast: float = 0.45,
    domain_diffusion: float = 0.4,
    jitter: float = 0.3,
    angle_jitter_deg: float = 3.0,
    relaxation: float = 0.15,
    landing_rate: float = 0.05,
    leaving_rate: float = 0.01,
    tip_blur: float = 0.8,
    scan_line_offset: float = 0.05,
    noise: float = 0.08,
) -> SelfAssemblyMovie:
    """Generate a synthetic HS-AFM self-assembly movie with ground truth.

    Parameters
    ----------
    n_frames : int
        Number of frames ``T``.
    size : int
        Frame edge ``H = W`` in pixels.
    n_particles : int
        Approximate mean number of rods per frame.
    transition_frame : int, optional
        First frame after the symmetry lowering; default ``n_frames // 2``.
    seed : int
        Random seed (the movie is a deterministic function of its arguments).
    rod_length : float
        Rod length in pixels.
    aspect_ratio : float
        Length over mean width.
    head_width_ratio : float
        Head width over tail width (head/tail asymmetry; the head is also brighter).
    head_contrast : float
        Height added from tail to head (the tail is 0.75 high, the head
        ``0.75 + head_contrast``); with ``head_width_ratio`` it sets how visible
        the rod's polarity (its directed angle) is.
    domain_diffusion : float
        Standard deviation of a domain's displacement per frame, pixels.
    jitter : float
        Standard deviation of each rod's position about its lattice site, pixels.
    angle_jitter_deg : float
        Standard deviation of each rod's angle about its domain's angle, degrees.
    relaxation : float
        Fraction of the remaining rotation a domain makes per frame towards its
        preferred direction (sets how fast the transition completes).
    landing_rate, leaving_rate : float
        Per-frame probabilities that an empty site is filled / a rod leaves.
    tip_blur : float
        Gaussian tip blur, standard deviation in pixels (0 disables).
    scan_line_offset : float
        Standard deviation of the per-row height offset.
    noise : float
        Standard deviation of additive Gaussian noise.

    Returns
    -------
    SelfAssemblyMovie
    """
    if n_frames < 1 or size < 32 or n_particles < 1:
        raise ValueError("need n_frames >= 1, size >= 32 and n_particles >= 1")
    if head_width_ratio <= 0 or head_contrast < 0:
        raise ValueError("need head_width_ratio > 0 and head_contrast >= 0")
    if transition_frame is None:
        transition_frame = n_frames // 2
    if not 0 <= transition_frame <= n_frames:
        raise ValueError(f"transition_frame must be in [0, {n_frames}], got {transition_frame}")
    rng = np.random.default_rng(seed)
    width_mean = rod_length / aspect_ratio
    width_tail = 2 * width_mean / (1 + head_width_ratio)
    width_head = head_width_ratio * width_tail
    spacing_u, spacing_v = rod_length + 4.0, width_head + 4.5
    reach = rod_length / 2 + 1.5
    occupancy = landing_rate / (landing_rate + leaving_rate)
    centres, radii, sites = _place_domains(
        rng, size, n_particles / occupancy, spacing_u, spacing_v, reach, gap=5.0
    )
    n_domains = len(radii)
    preferred = rng.choice(DIRECTIONS_BEFORE, size=n_domains)
    domain_angle = preferred + np.deg2rad(rng.normal(0, 2.0, n_domains))
    after = DIRECTIONS_AFTER[
        np.argmin(
            np.abs(np.angle(np.exp(1j * (preferred[:, None] - DIRECTIONS_AFTER[None])))), axis=1
        )
    ]
    site_domain = np.concatenate([np.full(len(s), k) for k, s in enumerate(sites)])
    site_local = np.concatenate(sites)
    n_sites = len(site_domain)
    occupied = rng.random(n_sites) < occupancy
    ids = np.where(occupied, np.arange(1, n_sites + 1), 0)
    next_id = n_sites + 1
    site_jitter = rng.normal(0, jitter, (n_sites, 2))
    site_angle = np.deg2rad(rng.normal(0, angle_jitter_deg, n_sites))
    half_frame = (size - 1) / 2
    patch = int(2 * math.ceil(rod_length / 2 + 3) + 1)
    frames = np.zeros((n_frames, size, size), np.float32)
    clean = np.zeros_like(frames)
    masks = np.zeros((n_frames, size, size), np.int32)
    table = {k: [] for k in ("frame", "id", "row", "col", "angle", "domain")}
    ar = 0.8  # AR(1) memory of jitters
    for t in range(n_frames):
        if t > 0:
            # domain moves, rejected when disks would overlap or leave the frame
            for k in range(n_domains):
                step = rng.normal(0, domain_diffusion, 2)
                c = centres[k] + step
                if np.any(np.abs(c) > half_frame):
                    continue
                others = np.delete(np.arange(n_domains), k)
                dist = np.hypot(*(centres[others] - c).T)
                if np.all(dist >= radii[others] + radii[k] + 5.0):
                    centres[k] = c
            target = after if t >= transition_frame else preferred
            delta = np.angle(np.exp(1j * (target - domain_angle)))
            domain_angle = (
                domain_angle + relaxation * delta + np.deg2rad(rng.normal(0, 0.5, n_domains))
            )
            leave = occupied & (rng.random(n_sites) < leaving_rate)
            land = ~occupied & (rng.random(n_sites) < landing_rate)
            occupied = (occupied & ~leave) | land
            n_land = int(land.sum())
            ids = np.where(occupied, ids, 0)
            ids[land] = np.arange(next_id, next_id + n_land)
            next_id += n_land
            site_jitter = ar * site_jitter + math.sqrt(1 - ar**2) * rng.normal(
                0, jitter, (n_sites, 2)
            )
            site_angle = ar * site_angle + math.sqrt(1 - ar**2) * np.deg2rad(
                rng.normal(0, angle_jitter_deg, n_sites)
            )
        dom_angle_t = torch.as_tensor(domain_angle[site_domain], dtype=torch.float64)
        world = (
            transform_points(
                torch.as_tensor(site_local, dtype=torch.float64).unsqueeze(1),
                angle=dom_angle_t,
                offset=torch.as_tensor(centres[site_domain], dtype=torch.float64),
            )
            .squeeze(1)
            .numpy()
        )
        world = world + site_jitter
        angle = domain_angle[site_domain] + site_angle
        visible = occupied & np.all(np.abs(world) <= half_frame, axis=1)
        idx = np.flatnonzero(visible)
        height, owner = _render(
            world[idx], angle[idx], size, rod_length, width_tail, width_head, head_contrast, patch
        )
        clean[t] = height.numpy()
        owner = owner.numpy()
        masks[t] = np.where(owner >= 0, ids[idx][np.maximum(owner, 0)], 0)
        table["frame"].append(np.full(len(idx), t))
        table["id"].append(ids[idx])
        table["row"].append(world[idx, 1] + half_frame)
        table["col"].append(world[idx, 0] + half_frame)
        table["angle"].append(np.angle(np.exp(1j * angle[idx])))
        table["domain"].append(site_domain[idx])
    image = torch.from_numpy(clean).unsqueeze(1)
    if tip_blur > 0:
        radius = int(math.ceil(3 * tip_blur))
        x = torch.arange(-radius, radius + 1, dtype=torch.float32)
        g = torch.exp(-0.5 * (x / tip_blur) ** 2)
        g = g / g.sum()
        image = F.pad(image, (radius, radius, radius, radius), mode="replicate")
        image = F.conv2d(image, g.reshape(1, 1, 1, -1))
        image = F.conv2d(image, g.reshape(1, 1, -1, 1))
    noisy = image.squeeze(1).numpy()
    noisy = noisy + rng.normal(0, scan_line_offset, (n_frames, size, 1))
    noisy = noisy + rng.normal(0, noise, noisy.shape)
    frames[:] = noisy
    particles = {k: np.concatenate(v) for k, v in table.items()}
    particles["frame"] = particles["frame"].astype(np.int64)
    particles["id"] = particles["id"].astype(np.int64)
    particles["domain"] = particles["domain"].astype(np.int64)
    particles["axis_angle"] = np.angle(np.exp(2j * particles["angle"])) / 2
    n = len(particles["frame"])
    particles["length"] = np.full(n, rod_length)
    particles["width"] = np.full(n, width_mean)
    params = {
        "n_frames": n_frames,
        "size": size,
        "n_particles": n_particles,
        "seed": seed,
        "rod_length": rod_length,
        "aspect_ratio": aspect_ratio,
        "head_width_ratio": head_width_ratio,
        "head_contrast": head_contrast,
        "tip_blur": tip_blur,
        "scan_line_offset": scan_line_offset,
        "noise": noise,
    }
    return SelfAssemblyMovie(
        frames=frames,
        masks=masks,
        particles=particles,
        transition_frame=int(transition_frame),
        clean=clean,
        params=params,
    )
