"""Initial class averages (k-means++ on rotation-invariant features) and class splitting."""

from __future__ import annotations

import torch

from ...analysis.clustering import kmeans
from ...checks import as_tensor
from ...commonlines.features import rotation_invariant_features
from ._frames import _take


def _frame_features(counts_full: torch.Tensor, region: torch.Tensor, max_harmonic: int):
    """Rotation-invariant low-harmonic features of sparse frames ``(B, S, S)``."""
    width = max(3, (counts_full.shape[-1] // 13) | 1)  # 3 px at 33^2, 5 px at 65^2
    blurred = torch.nn.functional.avg_pool2d(
        counts_full.unsqueeze(1), width, stride=1, padding=width // 2, count_include_pad=False
    ).squeeze(1)
    feats = rotation_invariant_features(
        blurred * region, mask_radius=1.0, max_harmonic=max_harmonic, device=counts_full.device
    )
    return feats / counts_full.sum(dim=(1, 2)).clamp_min(1).unsqueeze(1)


def _initial_averages(frames, index, size, n_classes, region, generator, device):
    """Cluster frames by rotation-invariant features, then seed each class from its medoid.

    Features: ``|FFT|`` along the azimuth (harmonics 0, 2, 4) of the blurred
    frames, per photon (:func:`~pyrolatent.commonlines.rotation_invariant_features`),
    standardised; k-means++ groups them. Class ``k`` starts as the blurred frame
    nearest its cluster centre, mixed half and half with the cluster's mean
    frame. Returns the averages, the cluster fractions and the cluster labels.
    """
    region_f = region.float()

    def batches():
        for start in range(0, len(index), 4096):
            rows = index[start : start + 4096]
            yield start, as_tensor(_take(frames, rows), name="frames", device=device) * region_f

    feats = [_frame_features(full, region_f, max_harmonic=4) for _, full in batches()]
    x = torch.cat(feats)
    x = torch.log(x + 1e-3 * x.mean(0).clamp_min(1e-12))
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    labels = kmeans(x, n_classes, generator)
    # cluster means, streamed (frames are never all held as float)
    sums = torch.zeros(n_classes, size, size, device=device)
    for start, full in batches():
        sums.index_add_(0, labels[start : start + full.shape[0]], full)
    counts = torch.bincount(labels, minlength=n_classes).to(sums.dtype)
    averages, fractions = [], []
    for j in range(n_classes):
        members = (labels == j).nonzero().squeeze(1)
        if members.numel() == 0:
            members = torch.randint(len(index), (1,), generator=generator).to(device)
        centre = x[members].mean(0, keepdim=True)
        medoid = members[torch.cdist(x[members], centre).argmin()]
        seed = _seed_images(frames, index[[int(medoid)]], device)[0] * region_f
        mean = sums[j] / counts[j] if counts[j] > 0 else seed
        scale = mean.sum() / seed.sum().clamp_min(1e-12)
        averages.append(0.5 * mean + 0.5 * seed * scale)
        fractions.append(float(counts[j]) / len(index))
    return torch.stack(averages) * region_f, torch.tensor(fractions, device=device), labels


def _split_into_empty_classes(averages, class_mass, region, threshold, generator):
    """Refill nearly empty classes by splitting the most populated ones.

    The largest class ``j`` and an empty class ``e`` get ``W_j exp(+-eps)``,
    with ``eps`` a smooth random field of 10% amplitude (the k-means split);
    EM then separates the sub-populations the largest class had merged.
    Returns the new averages and class masses.
    """
    total = class_mass.sum()
    empty = (class_mass < threshold * total).nonzero().squeeze(1).tolist()
    if not empty:
        return averages, class_mass
    averages, class_mass = averages.clone(), class_mass.clone()
    size = averages.shape[-1]
    for e in empty:
        j = int(class_mass.argmax())
        coarse = torch.randn(1, 1, 5, 5, generator=generator).to(averages.device)
        field = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic")[0, 0]
        eps = 0.1 * field / field.std().clamp_min(1e-12)
        base = averages[j]
        averages[j] = base * torch.exp(eps) * region
        averages[e] = base * torch.exp(-eps) * region
        class_mass[j] = class_mass[e] = 0.5 * (class_mass[j] + class_mass[e])
    return averages, class_mass


def _seed_images(frames, rows, device):
    seeds = as_tensor(_take(frames, rows), name="frames", device=device)
    kernel = torch.ones(1, 1, 3, 3, device=device) / 9.0
    return torch.nn.functional.conv2d(seeds.unsqueeze(1), kernel, padding=1).squeeze(1)
