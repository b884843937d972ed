"""Circular priors: normalisation, sampling, symmetry."""

import math

import pytest
import torch

from pyrolatent.distributions import (
    CircularUniform,
    ProjectedNormalAngle,
    VonMises,
    angle_to_vector,
    vector_to_angle,
    wrap_angle,
)


def _integral(d, lo=-math.pi, hi=math.pi, n=40001):
    g = torch.linspace(lo, hi, n, dtype=torch.float64)
    return float(torch.trapezoid(d.log_prob(g.float()).double().exp(), g))


@pytest.mark.parametrize("c", [(0.0, 0.0), (3.0, -1.0), (10.0, 10.0)])
def test_projected_normal_angle_is_normalised_on_the_circle(c):
    assert _integral(ProjectedNormalAngle(torch.tensor(c))) == pytest.approx(1.0, abs=1e-3)


def test_projected_normal_angle_with_symmetry_is_normalised_on_its_sector():
    d = ProjectedNormalAngle(torch.tensor([2.0, 1.0]), symmetry=4)
    assert _integral(d, -math.pi / 4, math.pi / 4) == pytest.approx(1.0, abs=1e-3)
    s = d.rsample((5000,))
    assert s.min() >= -math.pi / 4 - 1e-6 and s.max() <= math.pi / 4 + 1e-6


def test_projected_normal_angle_mean_direction_and_spread():
    d = ProjectedNormalAngle(torch.tensor([0.0, 20.0]))
    s = d.rsample((20000,))
    assert float(s.mean()) == pytest.approx(math.pi / 2, abs=0.01)
    assert float(s.std()) == pytest.approx(float(d.circular_scale), rel=0.1)
    assert float(d.mean_direction) == pytest.approx(math.pi / 2)


def test_projected_normal_angle_is_reparameterised():
    c = torch.tensor([3.0, 0.5], requires_grad=True)
    ProjectedNormalAngle(c).rsample((100,)).sum().backward()
    assert c.grad is not None and torch.isfinite(c.grad).all()


def test_uniform_and_von_mises_are_normalised():
    assert _integral(CircularUniform()) == pytest.approx(1.0, abs=1e-4)
    assert _integral(VonMises(torch.tensor(1.0), torch.tensor(4.0))) == pytest.approx(1.0, abs=1e-3)
    assert CircularUniform().expand([7]).sample().shape == (7,)


def test_angle_vector_round_trip_and_wrap():
    a = torch.linspace(-3.1, 3.1, 50)
    assert torch.allclose(vector_to_angle(angle_to_vector(a)), a, atol=1e-6)
    assert torch.allclose(wrap_angle(a + 4 * math.pi), a, atol=1e-5)


def test_bad_concentration_shape_is_refused():
    with pytest.raises(ValueError, match="last dimension of 2"):
        ProjectedNormalAngle(torch.zeros(3))
    with pytest.raises(ValueError, match="symmetry"):
        ProjectedNormalAngle(torch.zeros(2), symmetry=0)
