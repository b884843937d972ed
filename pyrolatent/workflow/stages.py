"""The stages of the self-assembly workflow, each from plain files to plain files.

``movie -> segment -> locate -> crops -> train -> analyze -> report``. Every
stage reads its inputs from paths, writes its outputs atomically into an
output folder under fixed names (listed in :data:`OUTPUTS`) and returns the
paths, so a user can enter the chain anywhere with their own files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .io import load_json, load_npy, load_table, save_json, save_npy, save_table

__all__ = [
    "OUTPUTS",
    "stage_movie",
    "stage_segment",
    "stage_locate",
    "stage_crops",
    "stage_train",
    "stage_analyze",
    "ANGLE_GRID_SIZE",
]

OUTPUTS = {
    "movie": ["movie.npy", "masks.npy", "truth.csv", "movie.json"],
    "segment": ["ensemble.pt", "probability.npy", "variance.npy", "segment.json"],
    "locate": ["particles.csv"],
    "crops": ["crops.npy", "crops_index.csv"],
    "train": ["rvae.pt", "latents.csv", "rvae_history.json"],
    "analyze": [
        "kde_angle.npy",
        "kde_z0.npy",
        "kde_z1.npy",
        "kde_grids.json",
        "nmf_weights.npy",
        "nmf_loadings.npy",
        "nmf_weights_band.npy",
        "nmf_loadings_band.npy",
        "trajectories.csv",
        "analysis.json",
    ],
}
ANGLE_GRID_SIZE = 180


def stage_movie(
    out,
    *,
    n_frames: int,
    size: int,
    n_particles: int,
    transition_frame: int,
    head_width_ratio: float = 1.4,
    head_contrast: float = 0.45,
    seed: int,
) -> list[Path]:
    """Generate the synthetic self-assembly movie with its planted transition.

    ``head_width_ratio`` and ``head_contrast`` set how visible the rods'
    head/tail polarity is (see
    :func:`pyrolatent.data.synthetic.self_assembly.make_self_assembly_movie`).

    Writes ``movie.npy`` ``(T, H, W)``, ``masks.npy`` (instance labels, the
    "manual labels"), ``truth.csv`` (true particles) and ``movie.json``
    (``planted_transition_frame`` and the generator's parameters).
    """
    from ..data.synthetic.self_assembly import make_self_assembly_movie

    out = Path(out)
    movie = make_self_assembly_movie(
        n_frames=n_frames,
        size=size,
        n_particles=n_particles,
        transition_frame=transition_frame,
        head_width_ratio=head_width_ratio,
        head_contrast=head_contrast,
        seed=seed,
    )
    paths = [
        save_npy(out / "movie.npy", movie.frames),
        save_npy(out / "masks.npy", movie.masks),
        save_table(out / "truth.csv", movie.particles),
    ]
    meta = {"planted_transition_frame": movie.transition_frame, **movie.params}
    paths.append(save_json(out / "movie.json", meta))
    return paths


def stage_segment(
    out,
    movie_path,
    *,
    masks_path=None,
    train_frames=(0, 1, 2, 3),
    ensemble_path=None,
    n_members: int = 3,
    filters: int = 8,
    baseline_steps: int = 150,
    member_steps: int = 20,
    patch_size: int = 64,
    seed: int = 0,
    quiet: bool = False,
) -> list[Path]:
    """Train (or load) a segmentation ensemble and predict every frame.

    Parameters
    ----------
    movie_path : path-like
        ``.npy`` or ``.tif`` movie, ``(T, H, W)``.
    masks_path : path-like, optional
        ``.npy`` labels ``(T, H, W)`` (> 0 is particle) for training; only
        ``train_frames`` are used for training, the others (when present)
        score the pixel IoU.
    ensemble_path : path-like, optional
        A trained :class:`~pyrolatent.segmentation.DeepEnsemble` checkpoint
        used instead of training.

    Writes ``ensemble.pt``, ``probability.npy`` and ``variance.npy`` (``(T, H, W)``
    float32 ensemble mean and variance) and ``segment.json``
    (``segmentation_iou`` on frames not used for training, or null).
    """
    from ..data.io import read_movie
    from ..segmentation import DeepEnsemble, train_ensemble
    from ..segmentation.metrics import pixel_iou

    out = Path(out)
    frames = read_movie(movie_path)
    masks = load_npy(masks_path) if masks_path is not None else None
    train_frames = [int(f) for f in train_frames]
    if ensemble_path is not None:
        ensemble = DeepEnsemble.load(ensemble_path)
    else:
        if masks is None:
            raise ValueError("give masks_path (labels for training) or a trained ensemble_path")
        if masks.shape != frames.shape:
            raise ValueError(f"masks: shape {masks.shape} differs from the movie {frames.shape}")
        if not train_frames or max(train_frames) >= len(frames) or min(train_frames) < 0:
            raise ValueError(f"train_frames must lie in [0, {len(frames) - 1}]")
        ensemble = train_ensemble(
            frames[train_frames],
            masks[train_frames] > 0,
            network_config={"filters": filters},
            n_members=n_members,
            baseline_steps=baseline_steps,
            member_steps=member_steps,
            batch_size=4,
            patch_size=patch_size,
            lr=3e-3,
            eval_every=25,
            patience=None,
            seed=seed,
            progress=not quiet,
        )
    paths = [ensemble.save(out / "ensemble.pt")]
    mean, var = ensemble.predict(frames, progress=not quiet)
    paths.append(save_npy(out / "probability.npy", mean[:, 0]))
    paths.append(save_npy(out / "variance.npy", var[:, 0]))
    iou = None
    if masks is not None:
        test = [t for t in range(len(frames)) if t not in set(train_frames)]
        if test:
            iou = float(pixel_iou(mean[test, 0] > 0.5, masks[test] > 0))
    paths.append(
        save_json(out / "segment.json", {"segmentation_iou": iou, "train_frames": train_frames})
    )
    return paths


def stage_locate(
    out, probability_path, *, variance_path=None, threshold: float = 0.5, min_area: float = 15
) -> list[Path]:
    """Particles from probability maps: ``particles.csv`` (one row per particle).

    Frames without particles contribute no rows; the frame count is kept by
    the probability maps.
    """
    from ..segmentation import locate

    prob = load_npy(probability_path)
    unc = load_npy(variance_path) if variance_path is not None else None
    table = locate(prob, uncertainty=unc, threshold=threshold, min_area=min_area)
    return [save_table(Path(out) / "particles.csv", table)]


def stage_crops(
    out,
    movie_path,
    particles_path,
    *,
    window: int = 32,
    align: bool = False,
    mask_half_width: float | str | None = None,
) -> list[Path]:
    """Crops around every particle: ``crops.npy`` ``(N, w, w)`` and ``crops_index.csv``.

    Parameters
    ----------
    window : int
        Crop edge ``w`` in pixels.
    align : bool
        Pre-align each crop by its particle's ellipse axis (the ``orientation``
        column of the particle table, radians): the crop is cut from a
        ``1.5 w`` window, centred on the sub-pixel particle centre and rotated
        so that the axis lies along +x (:func:`pyrolatent.data.crops.align_crops`).
        The index then gets an ``orientation`` column, and :func:`stage_train`
        combines it with the rVAE latents into directed angles
        (:mod:`pyrolatent.analysis.polarity`).
    mask_half_width : float or "auto", optional
        Only with ``align``: multiply the aligned crops by a soft band
        ``|y| <= mask_half_width`` pixels (:func:`pyrolatent.data.crops.band_mask`),
        which keeps the particle and removes its side-by-side neighbours.
        ``"auto"`` uses the median ``minor_axis`` of the table plus 1 pixel.
        ``None`` (default) keeps the whole crop.
    """
    from ..data.crops import align_crops, band_mask, extract_crops
    from ..data.io import read_movie

    frames = read_movie(movie_path)
    particles = {k: np.array(v) for k, v in load_table(particles_path).items()}
    if mask_half_width is not None and not align:
        raise ValueError("mask_half_width needs align=True (the band follows the particle axis)")
    if not align:
        crops, index = extract_crops(frames, particles, window)
    else:
        if "orientation" not in particles:
            raise ValueError("align=True needs an 'orientation' column in the particle table")
        big = int(math.ceil(1.5 * window))
        big += (big - window) % 2  # same parity: the centre cut is symmetric
        big = min(big, min(frames.shape[1:]))
        crops, index = extract_crops(frames, particles, big)
        centre = big // 2 - (big - 1) / 2  # crop-centre pixel minus geometric centre
        shifts = (
            np.stack(
                [
                    particles["col"] - index["col"] + centre,
                    particles["row"] - index["row"] + centre,
                ],
                axis=1,
            )
            if len(crops)
            else np.zeros((0, 2))
        )
        crops = align_crops(crops, particles["orientation"], shifts=shifts, window=window)
        h, w = frames.shape[1:]
        top, left = index["row"] - window // 2, index["col"] - window // 2
        index["valid"] = (top >= 0) & (left >= 0) & (top + window <= h) & (left + window <= w)
        index["orientation"] = np.asarray(particles["orientation"], dtype=np.float64)
        if mask_half_width is not None:
            if mask_half_width == "auto":
                if "minor_axis" not in particles or not len(crops):
                    raise ValueError("mask_half_width='auto' needs a 'minor_axis' column")
                mask_half_width = float(np.median(particles["minor_axis"])) + 1.0
            crops = crops * band_mask(window, float(mask_half_width))[None]
    out = Path(out)
    return [save_npy(out / "crops.npy", crops), save_table(out / "crops_index.csv", index)]


def scale_crops(crops: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """Rescale crops to ``[0, 1]`` by their 1st and 99.5th percentiles (for Bernoulli)."""
    lo, hi = np.percentile(crops, [1.0, 99.5]) if crops.size else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0
    return np.clip((crops - lo) / (hi - lo), 0, 1).astype(np.float32), (float(lo), float(hi))


def stage_train(
    out,
    crops_path,
    index_path,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 3e-3,
    latent_dim: int = 2,
    decoder: str = "warp",
    seed: int = 0,
    quiet: bool = False,
) -> list[Path]:
    """Train the rVAE on the crops and encode them.

    Crops are rescaled to ``[0, 1]`` (:func:`scale_crops`) and modelled with a
    Bernoulli likelihood. The fit resumes from ``rvae_checkpoint.pt`` when a
    previous run was interrupted. Writes ``rvae.pt``, ``rvae_history.json`` and
    ``latents.csv`` (``frame``, ``particle``, ``angle`` (radians),
    ``offset_0``/``offset_1`` (dx, dy pixels), ``z_0``.., ``valid``).

    When the index has an ``orientation`` column (crops pre-aligned by
    :func:`stage_crops` with ``align=True``), ``angle`` is the directed angle
    in the movie frame: the axis plus the rVAE's residual rotation plus the
    polarity read from the rVAE reconstruction
    (:func:`pyrolatent.analysis.polarity.directed_angles`); the raw latent is
    kept as ``angle_latent``, with ``polarity`` (+1/-1) and ``polarity_moment``.
    """
    from ..estimators.rvae import RVAE

    out = Path(out)
    crops = load_npy(crops_path)
    index = load_table(index_path)
    if len(crops) < 2:
        raise ValueError(f"need at least 2 crops to train the rVAE, got {len(crops)}")
    x, (lo, hi) = scale_crops(crops)
    rvae = RVAE(
        tuple(crops.shape[1:]),
        latent_dim=latent_dim,
        decoder=decoder,
        likelihood="bernoulli",
        symmetry=1,
        seed=seed,
    )
    history = rvae.fit(
        x,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        checkpoint_path=out / "rvae_checkpoint.pt",
        progress=not quiet,
    ).history
    enc = rvae.encode(x)
    table = {
        "frame": index["frame"],
        "particle": index["particle"],
        "angle": enc["angle"]["loc"],
        "angle_scale": enc["angle"]["scale"],
        "offset": enc["offset"]["loc"],
        "z": enc["z"]["loc"],
        "valid": index["valid"],
    }
    if "orientation" in index:
        # pre-aligned crops: directed angle = axis + residual + polarity (see analysis.polarity)
        from ..analysis.polarity import directed_angles

        recon = rvae.decode(enc["z"]["loc"], angle=enc["angle"]["loc"])
        d = directed_angles(index["orientation"], enc["angle"]["loc"], recon)
        table["angle"] = d["angle"]
        table["angle_latent"] = enc["angle"]["loc"]
        table["polarity"] = d["polarity"]
        table["polarity_moment"] = d["moment"]
    return [
        rvae.save(out / "rvae.pt"),
        save_table(out / "latents.csv", table),
        save_json(out / "rvae_history.json", {**history, "scale": [lo, hi]}),
    ]


def stage_analyze(
    out,
    latents_path,
    particles_path,
    *,
    n_frames: int | None = None,
    kde_window: int = 3,
    n_components: int = 2,
    nmf_method: str = "svi",
    nmf_steps: int = 1500,
    search_radius: float = 21.0,
    max_gap: int = 2,
    peak_margin: int = 3,
    seed: int = 0,
    quiet: bool = False,
) -> list[Path]:
    """KDE(L, t) of the angle and the content latents, NMF, transition, peaks, trajectories.

    Parameters
    ----------
    n_frames : int, optional
        Frames of the movie (frames without particles become empty rows);
        default ``max(frame) + 1``.
    kde_window : int
        Frames pooled per KDE row (centred window).
    peak_margin : int
        Angle peaks are counted on frames ``< transition - peak_margin``
        ("before") and ``>= end + peak_margin`` ("after"), ``end`` being the
        end of the fitted ramp.

    Writes the KDE matrices ``kde_<latent>.npy`` ``(T, G)`` with their grids in
    ``kde_grids.json``, the NMF factors (``nmf_weights.npy`` ``(K, G)``,
    ``nmf_loadings.npy`` ``(T, K)``, and 5-95 % bands), ``trajectories.csv``
    (the particle table with ``track`` and the latents) and ``analysis.json``.
    """
    from ..analysis.kde import latent_kde_over_time
    from ..analysis.tracking import link
    from ..analysis.transitions import count_angle_peaks, transition_frame
    from ..estimators.nmf import NMF

    out = Path(out)
    lat = load_table(latents_path)
    particles = load_table(particles_path)
    frames = lat["frame"].astype(np.int64)
    if n_frames is None:
        n_frames = int(frames.max()) + 1 if frames.size else 0
    angle_grid = np.linspace(-math.pi, math.pi, ANGLE_GRID_SIZE, endpoint=False)
    grids = {"angle": angle_grid}
    kdes = {
        "angle": latent_kde_over_time(
            lat["angle"], frames, angle_grid, circular=True, window=kde_window, n_frames=n_frames
        )
    }
    for d in (0, 1):
        z = lat.get(f"z_{d}", np.zeros(len(frames)))
        lim = float(np.percentile(np.abs(z), 99.5)) if z.size else 1.0
        grids[f"z{d}"] = np.linspace(-lim, lim, 100)
        kdes[f"z{d}"] = latent_kde_over_time(
            z, frames, grids[f"z{d}"], window=kde_window, n_frames=n_frames
        )
    paths = [save_npy(out / f"kde_{k}.npy", v) for k, v in kdes.items()]
    paths.append(save_json(out / "kde_grids.json", {k: v.tolist() for k, v in grids.items()}))
    nmf = NMF(n_components=n_components, seed=seed).fit(
        kdes["angle"], method=nmf_method, epochs=nmf_steps, progress=not quiet
    )
    w, h = nmf.components_, nmf.time_courses_
    wb = nmf.components_band_ if nmf.components_band_ is not None else np.stack([w] * 2)
    lb = nmf.time_courses_band_ if nmf.time_courses_band_ is not None else np.stack([h] * 2)
    paths += [
        save_npy(out / "nmf_weights.npy", w),
        save_npy(out / "nmf_loadings.npy", h),
        save_npy(out / "nmf_weights_band.npy", wb),
        save_npy(out / "nmf_loadings_band.npy", lb),
    ]
    tr = transition_frame(h, seed=seed)
    before = frames < tr["frame"] - peak_margin
    after = frames >= tr["end"] + peak_margin
    peaks_before = count_angle_peaks(lat["angle"][before])
    peaks_after = count_angle_peaks(lat["angle"][after])
    # trajectories: link the particle table, then attach the latents (row = particle)
    traj = link(particles, search_radius=search_radius, max_gap=max_gap)
    per_particle = {k: np.full(len(particles["frame"]), np.nan) for k in ("angle", "z_0", "z_1")}
    for k in per_particle:
        if k in lat:
            per_particle[k][lat["particle"].astype(np.int64)] = lat[k]
    traj.update(per_particle)
    paths.append(save_table(out / "trajectories.csv", traj))
    n_tracks = int(np.unique(traj["track"]).size)
    analysis = {
        "n_frames": int(n_frames),
        "n_particles": int(len(particles["frame"])),
        "n_trajectories": n_tracks,
        "transition_frame": tr["frame"],
        "transition_end": tr["end"],
        "transition_frame_uncertainty": tr["uncertainty"],
        "transition_interval": list(tr["interval"]),
        "angle_peaks_before": peaks_before["n_peaks"],
        "angle_peaks_after": peaks_after["n_peaks"],
        "angle_peak_positions_before_deg": np.rad2deg(peaks_before["positions"]).tolist(),
        "angle_peak_positions_after_deg": np.rad2deg(peaks_after["positions"]).tolist(),
        "nmf_method": nmf_method,
        "nmf_reconstruction_error": nmf.reconstruction_error(kdes["angle"]),
        "kde_window": kde_window,
    }
    paths.append(save_json(out / "analysis.json", analysis))
    return paths


def read_analysis(out) -> dict:
    """``analysis.json`` of a folder."""
    return load_json(Path(out) / "analysis.json")
