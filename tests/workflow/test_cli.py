"""The ``pyrolatent`` command: subcommands chained through plain files, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pyrolatent.cli import build_parser, main
from pyrolatent.io.files import load_npy, load_table
from pyrolatent.workflow import FIGURES, MovieConfig, stage_movie


def test_subcommands_chain_on_a_users_movie(tmp_path, capsys):
    src = tmp_path / "user"
    stage_movie(src, MovieConfig(n_frames=12, size=96, n_particles=8, transition_frame=6, seed=2))
    movie = src / "movie.npy"
    prob = (load_npy(src / "masks.npy") > 0).astype(np.float32)
    np.save(src / "probability.npy", prob)
    out = tmp_path / "run"
    # every command takes --quiet, so a script can pass it to all
    assert main(["locate", str(src / "probability.npy"), "--out", str(out), "--quiet"]) == 0
    assert len(load_table(out / "particles.csv")["frame"]) > 20
    crops_args = ["crops", str(movie), str(out / "particles.csv"), "--align", "--mask", "auto"]
    assert main([*crops_args, "--out", str(out), "--quiet"]) == 0
    assert load_npy(out / "crops.npy").shape[1:] == (32, 32)
    assert "orientation" in load_table(out / "crops_index.csv")
    assert (
        main(
            [
                "train",
                str(out / "crops.npy"),
                str(out / "crops_index.csv"),
                "--epochs",
                "1",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "analyze",
                str(out / "latents.csv"),
                str(out / "particles.csv"),
                "--n-frames",
                "12",
                "--kde-window",
                "1",
                "--nmf",
                "map",
                "--nmf-steps",
                "50",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert set(np.unique(load_table(out / "latents.csv")["polarity"])) <= {-1, 1}
    assert main(["report", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["planted_transition_frame"] is None  # a user's movie: no ground truth
    assert summary["n_frames"] == 12
    for name in FIGURES:
        assert (out / "figures" / name).stat().st_size > 1000


def test_clear_errors(tmp_path, capsys):
    src = tmp_path / "user"
    stage_movie(src, MovieConfig(n_frames=4, size=64, n_particles=4, transition_frame=2, seed=0))
    # label images without their frame list
    np.save(src / "some.npy", load_npy(src / "masks.npy")[:2])
    segment = ["segment", str(src / "movie.npy"), "--out", str(tmp_path / "o")]
    assert main([*segment, "--labels", str(src / "some.npy")]) == 2
    assert "need their frame list" in capsys.readouterr().err
    # report before analyze
    assert main(["report", str(tmp_path / "o")]) == 2
    assert "run 'analyze' first" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--bogus"])


def test_segment_without_labels_and_with_label_images_of_some_frames(tmp_path, capsys):
    import tifffile

    from pyrolatent.segmentation.metrics import pixel_iou

    src = tmp_path / "user"
    stage_movie(src, MovieConfig(n_frames=6, size=64, n_particles=6, transition_frame=3, seed=0))
    masks = load_npy(src / "masks.npy")
    fast = ["--members", "1", "--steps", "20", "--quiet"]
    segment = ["segment", str(src / "movie.npy"), *fast]
    # no labels: pseudo-masks of the clearest frames train the ensemble
    args = [*segment, "--pseudo-frames", "3", "--background-sigma", "6", "--out"]
    assert main([*args, str(tmp_path / "free")]) == 0
    record = json.loads((tmp_path / "free" / "segment.json").read_text())
    assert record["label_source"] == "pseudo_masks" and record["polarity"] == "bright"
    assert len(record["train_frames"]) == 3 and record["label_frames"] == record["train_frames"]
    assert record["segmentation_iou"] is None  # nothing labelled to score on
    prob = load_npy(tmp_path / "free" / "probability.npy")
    assert prob.shape == masks.shape
    iou = pixel_iou(prob > 0.5, masks > 0)
    assert iou >= 0.6, iou  # measured 0.81 (1 member, 20 steps)
    # frames flagged in the preprocess stage's frame_quality.csv beside the movie give none
    flagged = set(record["train_frames"])
    (src / "frame_quality.csv").write_text(
        "frame,flagged\n" + "".join(f"{f},{f in flagged}\n" for f in range(6))
    )
    assert main([*args, str(tmp_path / "flagged")]) == 0
    record = json.loads((tmp_path / "flagged" / "segment.json").read_text())
    assert len(record["train_frames"]) == 3 and not flagged & set(record["train_frames"])
    (src / "frame_quality.csv").unlink()
    # a napari Labels layer per labelled frame (2-D TIFFs) plus the frame list
    for f in (1, 4):
        tifffile.imwrite(tmp_path / f"labels_{f}.tif", masks[f].astype(np.uint16))
    images = [str(tmp_path / f"labels_{f}.tif") for f in (1, 4)]
    out = tmp_path / "some"
    assert main([*segment, "--labels", *images, "--label-frames", "1,4", "--out", str(out)]) == 0
    record = json.loads((out / "segment.json").read_text())
    assert record["label_source"] == "label_images"
    assert record["train_frames"] == record["label_frames"] == [1, 4]
    prob = load_npy(out / "probability.npy")
    iou = pixel_iou(prob[[0, 2, 3, 5]] > 0.5, masks[[0, 2, 3, 5]] > 0)
    assert iou >= 0.6, iou  # measured 0.81 on the frames not labelled
    # a trained ensemble scored on a (K, H, W) stack of label images and a frames file
    np.save(tmp_path / "stack.npy", masks[[0, 5]])
    (tmp_path / "frames.txt").write_text("0\n5\n")
    scored = [*segment, "--ensemble", str(out / "ensemble.pt"), "--labels"]
    scored += [str(tmp_path / "stack.npy"), "--label-frames", str(tmp_path / "frames.txt")]
    assert main([*scored, "--out", str(tmp_path / "scored")]) == 0
    record = json.loads((tmp_path / "scored" / "segment.json").read_text())
    assert record["label_source"] == "trained_ensemble" and record["label_frames"] == [0, 5]
    expected = pixel_iou(prob[[0, 5]] > 0.5, masks[[0, 5]] > 0)
    assert record["segmentation_iou"] == pytest.approx(expected, abs=1e-6)
    # label images that do not fit the movie: one line naming the problem
    capsys.readouterr()
    for frames, message in [
        ("1,4,5", "2 label images for 3 listed frames"),
        ("1,6", "outside the movie's frames 0..5"),
        ("4,4", "listed more than once"),
    ]:
        bad = [*segment, "--labels", *images, "--label-frames", frames, "--out", str(out)]
        assert main(bad) == 2
        assert message in capsys.readouterr().err, frames
    tifffile.imwrite(tmp_path / "small.tif", masks[1, :32].astype(np.uint16))
    bad = [*segment, "--labels", str(tmp_path / "small.tif"), "--label-frames", "1"]
    assert main([*bad, "--out", str(out)]) == 2
    assert "32 x 64 pixels, the movie's frames 64 x 64" in capsys.readouterr().err
    # labels of some frames padded to a full-length array are not labels of the whole movie
    assert main([*segment, "--masks", str(tmp_path / "stack.npy"), "--out", str(out)]) == 2
    assert "label images with their frame list" in capsys.readouterr().err


def test_demo_defaults_match_the_readme_command():
    args = build_parser().parse_args(["demo"])
    assert args.out == "pyrolatent-report" and not args.quick and args.seed == 0
    assert not args.label_free


def test_train_on_an_existing_checkpoint_says_what_it_resumes_and_trains_more(tmp_path, capsys):
    # issue 14: `train --epochs N` after a finished run trains N more epochs and says so
    src = tmp_path / "user"
    stage_movie(src, MovieConfig(n_frames=4, size=96, n_particles=8, transition_frame=2, seed=1))
    np.save(src / "probability.npy", (load_npy(src / "masks.npy") > 0).astype(np.float32))
    out = tmp_path / "run"
    # every command takes --quiet, so a script can pass it to all
    assert main(["locate", str(src / "probability.npy"), "--out", str(out), "--quiet"]) == 0
    assert (
        main(["crops", str(src / "movie.npy"), str(out / "particles.csv"), "--out", str(out)]) == 0
    )
    train = ["train", str(out / "crops.npy"), str(out / "crops_index.csv"), "--out", str(out)]
    assert main([*train, "--epochs", "2", "--quiet"]) == 0
    assert "resuming" not in capsys.readouterr().err
    assert json.loads((out / "rvae_history.json").read_text())["epoch"] == [0, 1]
    assert main([*train, "--epochs", "3", "--quiet"]) == 0
    lines = [s for s in capsys.readouterr().err.splitlines() if "resuming" in s]
    assert len(lines) == 1, lines
    assert str(out / "rvae_checkpoint.pt") in lines[0] and "(2 epochs trained)" in lines[0]
    assert "training 3 more" in lines[0]
    assert json.loads((out / "rvae_history.json").read_text())["epoch"] == [0, 1, 2, 3, 4]


def test_help_shows_the_chain_examples_and_defaults(capsys):
    from pyrolatent import __version__
    from pyrolatent.cli_parser import CHAIN, EXAMPLES

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "movie -> segment -> locate -> crops -> train -> analyze -> report" in text
    assert CHAIN in text
    for command, example in EXAMPLES.items():
        assert example in text, command
        with pytest.raises(SystemExit):
            main([command, "--help"])
        sub = capsys.readouterr().out
        assert "example:" in sub and example in sub and CHAIN in sub, command
        assert "--quiet" in sub, command  # the one progress switch, on every command
        if command != "report":
            assert "(default: " in sub, command
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "(default: 30)" in capsys.readouterr().out  # TrainConfig.epochs
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"pyrolatent {__version__}"


def test_oversubscription_warning_is_one_plain_line(monkeypatch, capsys):
    from pyrolatent import device
    from pyrolatent.cli import _configure_cpu

    monkeypatch.setattr(device, "_state", {"threads": None, "warned": False})
    for name in ("PYROLATENT_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(device.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    before = torch.get_num_threads()
    monkeypatch.setattr(device, "_available_cpus", lambda: before)
    monkeypatch.setattr(device, "physical_cores", lambda: before)
    try:
        _configure_cpu()
    finally:
        torch.set_num_threads(before)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: the machine is oversubscribed")
