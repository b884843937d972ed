"""Prototype: rVAE pose inference by exact enumeration over a rotation grid.

Research script for issue 17 (phase 1); it reuses the library's building blocks
(decoders, encoders, warp, circular correlation) without changing them.

Model, per image ``x`` (``H x W``)::

    z ~ N(0, I);  k ~ Uniform{0..K-1};  offset ~ N(0, s^2 I)
    x ~ Bernoulli(warp(canonical(z), angle=theta_k + delta, offset))

``theta_k = 2 pi k / K`` and ``delta`` is one random grid shift per batch
(uniform in ``[0, 2 pi / K)``), so training sees continuous angles. The decoder
renders the canonical image once per sample; the warp applies the ``K``
rotations as one ``grid_sample`` over ``(B*K)`` images. ``k`` is summed out
exactly (log-sum-exp, what ``TraceEnum_ELBO`` does with a parallel-enumerated
discrete site), so the angle posterior covers the whole circle and picks between
modes at every step: there is no basin to get stuck in.

Guide: ``q(offset | x)`` from a plain conv encoder; ``q(z | x)`` from a conv
encoder averaged over ``Ke`` rotated copies of the re-centred input (rotation
invariant up to the copies' grid), so ``z`` cannot carry the angle and the model
has to explain rotations with ``k``. At encode time the angle posterior is
evaluated on a finer grid (``refine * K`` angles) at ``z = loc``,
``offset = loc``: the MAP angle (used for the correlation) and the posterior over
the circle (for symmetry detection).

Run ``python benchmarks/pose_prototype.py METHOD DATA SEED [key=value ...]``;
prints one JSON line per run.
"""

from __future__ import annotations

import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pyrolatent.analysis.circular import circular_correlation
from pyrolatent.data.synthetic.shapes import make_rotated_shapes
from pyrolatent.nn.decoders import SpatialDecoder, WarpDecoder
from pyrolatent.nn.encoders import ConvEncoder, MLPEncoder
from pyrolatent.primitives import warp_images

EPS = 1e-6
ASYMMETRIC_DIGITS = (2, 3, 4, 5, 7)


# ----------------------------------------------------------------------------- data
def make_digits(
    seed: int,
    size: int = 32,
    digit_size: int = 24,
    max_offset: float = 2.0,
    copies: int = 2,
    classes=ASYMMETRIC_DIGITS,
) -> dict:
    """sklearn ``load_digits`` (real 8x8), upsampled, padded, rotated with scipy."""
    from scipy import ndimage
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, classes)
    imgs = torch.as_tensor(d.images[keep] / 16.0, dtype=torch.float32)
    labels = d.target[keep]
    up = (
        F.interpolate(
            imgs[:, None], size=(digit_size, digit_size), mode="bicubic", align_corners=False
        )[:, 0]
        .clamp(0, 1)
        .numpy()
    )
    pad = (size - digit_size) // 2
    up = np.pad(up, ((0, 0), (pad, size - digit_size - pad), (pad, size - digit_size - pad)))
    rng = np.random.default_rng(seed)
    out, angles, offs, labs = [], [], [], []
    for _ in range(copies):
        a = rng.uniform(0, 2 * np.pi, len(up))
        o = rng.uniform(-max_offset, max_offset, (len(up), 2))
        for img, ai, oi in zip(up, a, o, strict=True):
            r = ndimage.rotate(img, np.degrees(ai), reshape=False, order=3, mode="constant")
            r = ndimage.shift(r, (oi[1], oi[0]), order=3, mode="constant")
            out.append(np.clip(r, 0, 1))
        angles.append(a)
        offs.append(o)
        labs.append(labels)
    return {
        "images": np.stack(out).astype(np.float32),
        "angles": np.concatenate(angles),
        "labels": np.concatenate(labs),
        "symmetry": 1,
    }


def make_shapes(seed: int, shape: str = "L", size: int = 48, n: int = 1000) -> dict:
    d = make_rotated_shapes(n, shapes=(shape,), image_size=size, max_offset=3.0, seed=seed)
    return {
        "images": d["images"],
        "angles": d["angles"],
        "labels": d["labels"],
        "symmetry": int(d["symmetry"][0]),
    }


# ---------------------------------------------------------------------------- model
class EnumRVAE(nn.Module):
    """rVAE with the angle summed over a rotation grid (see module docstring)."""

    def __init__(
        self,
        image_size,
        latent_dim=2,
        k=24,
        ke=8,
        decoder="warp",
        dec_hidden=(128, 128, 128),
        enc_hidden=(128,),
        offset_scale=None,
        invariant=True,
        pool="mean",
        pm=1,
        enc="conv",
    ):
        super().__init__()
        h, w = image_size
        self.image_size, self.k, self.ke, self.invariant = (h, w), k, ke, invariant
        self.offset_scale = 0.05 * max(h, w) if offset_scale is None else offset_scale
        cls = WarpDecoder if decoder == "warp" else SpatialDecoder
        self.decoder = cls((h, w), latent_dim, dec_hidden, "tanh", torch.sigmoid)
        self.enc_t = (MLPEncoder if enc == "mlp" else ConvEncoder)((h, w), enc_hidden, "relu")
        self.head_t = nn.Linear(self.enc_t.out_features, 4)
        enc_cls = MLPEncoder if enc == "mlp" else ConvEncoder
        self.enc_z = enc_cls((h, w), enc_hidden, "relu")
        self.head_z = nn.Linear(self.enc_z.out_features, 2 * latent_dim)
        self.latent_dim = latent_dim
        self.pool, self.pm = pool, pm
        # standardise the pooled features: rotation-averaged views of different
        # images are similar, so their raw features barely differ at init
        self.norm_z = nn.BatchNorm1d(self.enc_z.out_features)
        for enc in (self.enc_t, self.enc_z):  # He init: PyTorch's default shrinks the signal
            for mod in enc.modules():  # ~0.4x per layer, leaving z ~constant at init
                if isinstance(mod, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")
                    nn.init.zeros_(mod.bias)

    def canonical(self, z):
        if isinstance(self.decoder, WarpDecoder):
            return self.decoder.canonical(z)
        return self.decoder(z)

    def q_offset(self, x):
        loc, raw = self.head_t(self.enc_t(x)).chunk(2, -1)
        return loc * self.offset_scale, F.softplus(raw) * self.offset_scale + 1e-4

    def q_z(self, x, t_loc, delta_e: float = 0.0):
        xc = warp_images(x, offset=-t_loc)
        if not self.invariant:
            f = self.enc_z(xc)
        else:
            b = x.shape[0]
            ang = (torch.arange(self.ke) * 2 * math.pi / self.ke + delta_e).repeat(b)
            cop = warp_images(xc.repeat_interleave(self.ke, 0), angle=ang)
            f = self.enc_z(cop).reshape(b, self.ke, -1)
            f = f.amax(1) if self.pool == "max" else f.mean(1)
        f = self.norm_z(f)
        loc, raw = self.head_z(f).chunk(2, -1)
        return loc, F.softplus(raw) + 1e-4

    def loglik_grid(self, x, z, offset, angles):
        """``log p(x | z, angle_k, offset)`` for every grid angle, ``(B, K)``."""
        b, k = x.shape[0], angles.shape[0]
        can = self.canonical(z)
        rend = warp_images(
            can.repeat_interleave(k, 0),
            angle=angles.repeat(b),
            offset=offset.repeat_interleave(k, 0),
        ).reshape(b, k, *self.image_size)
        p = rend.clamp(EPS, 1 - EPS)
        xx = x.unsqueeze(1)
        return (xx * p.log() + (1 - xx) * (1 - p).log()).sum((-1, -2))

    def pool_views(self, h, b, k):
        """Average view features over the ``pm`` views ``2 pi / pm`` apart, ``(b*k, F)``.

        ``pm = 1``: z sees the input turned back by theta_k (TARGET-VAE-like);
        ``pm = 2``: z cannot tell an image from its 180-degree turn, so it cannot
        carry a "flipped" bit and the decoder must choose one orientation.
        """
        if self.pm == 1:
            return h
        h = h.reshape(b, self.pm, k // self.pm, -1).mean(1, keepdim=True)
        return h.expand(b, self.pm, k // self.pm, h.shape[-1]).reshape(b * k, -1)

    def elbo_per_k(self, x, gen, beta):
        """TARGET-VAE-like: ``q(z | x, k)`` encodes the input turned back by ``theta_k``."""
        b, k = x.shape[0], self.k
        t_loc, t_scale = self.q_offset(x)
        t = t_loc + t_scale * torch.randn(t_loc.shape, generator=gen)
        delta = float(torch.rand((), generator=gen)) * 2 * math.pi / k
        angles = torch.arange(k) * 2 * math.pi / k + delta
        xc = warp_images(x, offset=-t_loc)
        cop = warp_images(xc.repeat_interleave(k, 0), angle=-angles.repeat(b))
        loc, raw = self.head_z(self.pool_views(self.norm_z(self.enc_z(cop)), b, k)).chunk(2, -1)
        sc = F.softplus(raw) + 1e-4
        z = loc + sc * torch.randn(loc.shape, generator=gen)
        can = self.canonical(z)
        rend = warp_images(can, angle=angles.repeat(b), offset=t.repeat_interleave(k, 0))
        p = rend.reshape(b, k, *self.image_size).clamp(EPS, 1 - EPS)
        xx = x.unsqueeze(1)
        ll = (xx * p.log() + (1 - xx) * (1 - p).log()).sum((-1, -2))
        kl_z = (0.5 * (loc**2 + sc**2 - 1 - 2 * sc.log()).sum(-1)).reshape(b, k)
        log_marg = torch.logsumexp(ll - beta * kl_z, -1) - math.log(k)
        kl_t = 0.5 * (
            (t_loc**2 + t_scale**2) / self.offset_scale**2
            - 1
            - 2 * (t_scale.log() - math.log(self.offset_scale))
        ).sum(-1)
        return (log_marg - beta * kl_t).sum() / b

    def elbo(self, x, gen: torch.Generator, temp: float = 1.0, beta: float = 1.0):
        if self.pool == "per_k":
            return self.elbo_per_k(x, gen, beta)
        b = x.shape[0]
        t_loc, t_scale = self.q_offset(x)
        t = t_loc + t_scale * torch.randn(t_loc.shape, generator=gen)
        de = float(torch.rand((), generator=gen)) * 2 * math.pi / self.ke
        z_loc, z_scale = self.q_z(x, t_loc, de)
        z = z_loc + z_scale * torch.randn(z_loc.shape, generator=gen)
        delta = float(torch.rand((), generator=gen)) * 2 * math.pi / self.k
        angles = torch.arange(self.k) * 2 * math.pi / self.k + delta
        ll = self.loglik_grid(x, z, t, angles)
        # temp > 1: deterministic annealing of the angle responsibilities
        log_marg = temp * (torch.logsumexp(ll / temp, -1) - math.log(self.k))
        kl_z = 0.5 * (z_loc**2 + z_scale**2 - 1 - 2 * z_scale.log()).sum(-1)
        s2 = self.offset_scale**2
        kl_t = 0.5 * (
            (t_loc**2 + t_scale**2) / s2 - 1 - 2 * (t_scale.log() - math.log(self.offset_scale))
        ).sum(-1)
        return (log_marg - beta * (kl_z + kl_t)).sum() / b

    @torch.no_grad()
    def encode(self, x, refine: int = 4, batch: int = 256):
        self.eval()  # batch-norm running statistics
        zs, angs, posts = [], [], []
        kf = self.k * refine
        grid = torch.arange(kf) * 2 * math.pi / kf
        for s in range(0, x.shape[0], batch):
            xb = x[s : s + batch]
            t_loc, _ = self.q_offset(xb)
            if self.pool == "per_k":
                b = xb.shape[0]
                xc = warp_images(xb, offset=-t_loc)
                cop = warp_images(xc.repeat_interleave(kf, 0), angle=-grid.repeat(b))
                feat = self.pool_views(self.norm_z(self.enc_z(cop)), b, kf)
                loc, raw = self.head_z(feat).chunk(2, -1)
                sc = F.softplus(raw) + 1e-4
                rend = warp_images(
                    self.canonical(loc), angle=grid.repeat(b), offset=t_loc.repeat_interleave(kf, 0)
                )
                p = rend.reshape(b, kf, *self.image_size).clamp(EPS, 1 - EPS)
                xx = xb.unsqueeze(1)
                ll = (xx * p.log() + (1 - xx) * (1 - p).log()).sum((-1, -2))
                ll = ll - (0.5 * (loc**2 + sc**2 - 1 - 2 * sc.log()).sum(-1)).reshape(b, kf)
                z_loc = loc.reshape(b, kf, -1)[torch.arange(b), ll.argmax(-1)]
            else:
                z_loc, _ = self.q_z(xb, t_loc)
                ll = self.loglik_grid(xb, z_loc, t_loc, grid)
            post = torch.softmax(ll, -1)
            zs.append(z_loc)
            angs.append(grid[ll.argmax(-1)])
            posts.append(post)
        self.train()
        return {
            "z": torch.cat(zs).numpy(),
            "angle": torch.cat(angs).numpy(),
            "posterior": torch.cat(posts).numpy(),
            "grid": grid.numpy(),
        }


def symmetry_order(model: EnumRVAE, z: np.ndarray, max_n: int = 8, thresh: float = 0.9):
    """Estimate n from the decoded canonical images' rotational self-similarity.

    For each n, the normalised correlation between the canonical image and the
    image turned by ``2 pi / n``; returns the largest n whose median over the
    codes exceeds ``thresh`` (1 if none), and the scores.
    """
    with torch.no_grad():
        can = model.canonical(torch.as_tensor(z[:200]))
        scores = {}
        for n in range(2, max_n + 1):
            rot = warp_images(can, angle=torch.full((can.shape[0],), 2 * math.pi / n))
            a = can - can.mean((-1, -2), keepdim=True)
            r = rot - rot.mean((-1, -2), keepdim=True)
            c = (a * r).sum((-1, -2)) / (a.norm(dim=(-1, -2)) * r.norm(dim=(-1, -2)) + 1e-8)
            scores[n] = float(c.median())
    ns = [n for n, c in scores.items() if c > thresh]
    return (max(ns) if ns else 1), scores


# ------------------------------------------------------------------------- training
def train(model, x, epochs, batch=64, lr=1e-3, seed=0, t0_temp=1.0, anneal=0, warm=0):
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = x.shape[0]
    hist = []
    t0 = time.perf_counter()
    for ep in range(epochs):
        frac = min(1.0, ep / anneal) if anneal else 1.0
        temp = float(t0_temp ** (1 - frac))
        beta = min(1.0, (ep + 1) / warm) if warm else 1.0
        perm = torch.randperm(n, generator=gen)
        tot = 0.0
        for s in range(0, n, batch):
            xb = x[perm[s : s + batch]]
            loss = -model.elbo(xb, gen, temp, beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * xb.shape[0]
        hist.append(tot / n)
    return hist, n * epochs / (time.perf_counter() - t0)


def linear_probe(feat, labels, seed=0):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return float(cross_val_score(clf, feat, labels, cv=5).mean())


def evaluate(data, angle, z=None):
    sym = data["symmetry"]
    out = {"corr": abs(circular_correlation(angle, data["angles"], symmetry=sym))}
    labs = data["labels"]
    if len(np.unique(labs)) > 1:
        per = [
            abs(circular_correlation(angle[labs == c], data["angles"][labs == c], symmetry=sym))
            for c in np.unique(labs)
        ]
        out["corr_per_class"] = [round(p, 3) for p in per]
        out["corr_class_min"] = float(min(per))
        per2 = [
            abs(circular_correlation(angle[labs == c], data["angles"][labs == c], symmetry=2 * sym))
            for c in np.unique(labs)
        ]
        out["corr_mod_pi_per_class"] = [round(p, 3) for p in per2]
        if z is not None:
            out["probe_z"] = linear_probe(z, labs)
            out["probe_pixels"] = linear_probe(data["images"].reshape(len(labs), -1), labs)
    return out


def run(method: str, data_name: str, seed: int, **kw):
    torch.set_num_threads(1)
    if data_name == "digits":
        data = make_digits(seed)
    else:
        data = make_shapes(seed, shape=data_name, size=int(kw.pop("size", 48)))
    x = torch.as_tensor(data["images"])
    epochs = int(kw.pop("epochs", 20))
    res = {"method": method, "data": data_name, "seed": seed, "epochs": epochs, "n": len(x)}
    torch.manual_seed(seed)  # prototype only: parameter init
    if method == "enum":
        opts = {
            k: v
            for k, v in kw.items()
            if k in ("latent_dim", "k", "ke", "decoder", "pool", "pm", "enc")
        }
        opts = {k: (v if k in ("decoder", "pool", "enc") else int(v)) for k, v in opts.items()}
        if "invariant" in kw:
            opts["invariant"] = bool(int(kw["invariant"]))
        res.update(opts)
        model = EnumRVAE(tuple(x.shape[1:]), **opts)
        hist, ips = train(
            model,
            x,
            epochs,
            batch=int(kw.get("batch", 64)),
            lr=float(kw.get("lr", 1e-3)),
            seed=seed,
            t0_temp=float(kw.get("temp", 1.0)),
            anneal=int(kw.get("anneal", 0)),
            warm=int(kw.get("warm", 0)),
        )
        res["warm"] = int(kw.get("warm", 0))
        res["temp"], res["anneal"] = float(kw.get("temp", 1.0)), int(kw.get("anneal", 0))
        enc = model.encode(x)
        res.update(evaluate(data, enc["angle"], enc["z"]))
        if "save" in kw:
            np.savez(
                kw["save"],
                angle=enc["angle"],
                z=enc["z"],
                truth=data["angles"],
                labels=data["labels"],
                posterior=enc["posterior"],
            )
            torch.save(model.state_dict(), kw["save"] + ".pt")
        res["elbo_last"] = -hist[-1]
        res["images_per_s"] = ips
        if data["symmetry"] > 1 or data_name.startswith("ngon"):
            res["n_est"], res["n_scores"] = symmetry_order(model, enc["z"])
            res["corr_mod_n_est"] = abs(
                circular_correlation(enc["angle"], data["angles"], symmetry=res["n_est"])
            )
    elif method == "library":
        from pyrolatent.estimators.rvae import RVAE

        dec = kw.get("decoder", "warp")
        rv = RVAE(
            tuple(x.shape[1:]),
            latent_dim=int(kw.get("latent_dim", 2)),
            decoder=dec,
            hidden=(128, 128, 128),
            encoder_hidden=(128, 128),
            seed=seed,
        )
        t0 = time.perf_counter()
        h = rv.fit(data["images"], epochs=epochs, batch_size=100, quiet=True)
        res["images_per_s"] = len(x) * epochs / (time.perf_counter() - t0)
        enc = rv.encode(data["images"])
        res["decoder"] = dec
        res.update(evaluate(data, enc["angle"]["loc"], enc["z"]["loc"]))
        last = h["loss"][-1] if isinstance(h, dict) and "loss" in h else None
        res["loss_last"] = last
    else:
        raise ValueError(method)
    return res


if __name__ == "__main__":
    m, dname, sd = sys.argv[1], sys.argv[2], int(sys.argv[3])
    extra = dict(a.split("=", 1) for a in sys.argv[4:])
    print(json.dumps(run(m, dname, sd, **extra)), flush=True)
