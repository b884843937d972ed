"""kmeans: the library's k-means++ (2D classes, particle styles)."""

import torch

from pyrolatent.analysis.clustering import kmeans


def test_three_separated_blobs_are_found_and_the_generator_decides():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    truth = torch.arange(3).repeat_interleave(50)
    x = centres[truth] + torch.randn(150, 2, generator=g)
    labels = kmeans(x, 3, torch.Generator().manual_seed(1))
    # each found cluster is exactly one blob
    for j in range(3):
        assert len(torch.unique(truth[labels == j])) == 1
    assert len(torch.unique(labels)) == 3
    again = kmeans(x, 3, torch.Generator().manual_seed(1))
    assert torch.equal(labels, again)
