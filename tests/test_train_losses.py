"""Losses against reference math written out here; DISTS weight loading in its three file formats."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from dove_cli.errors import OptionError
from dove_cli.train.losses import CHANNELS, DISTS, PixelLoss, frame_difference_loss, latent_loss


@pytest.fixture(scope="module")
def dists() -> DISTS:
    return DISTS(seed=0)


def _reference_dists(model: DISTS, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DISTS as the paper writes it, in float64, from the model's own stage features."""
    fx = [f.double() for f in model.stage_features(x)]
    fy = [f.double() for f in model.stage_features(y)]
    alpha, beta = model.alpha.double().flatten(), model.beta.double().flatten()
    total = alpha.sum() + beta.sum()
    out = torch.zeros(x.shape[0], dtype=torch.float64)
    start = 0
    for u, v, c in zip(fx, fy, CHANNELS, strict=False):
        a, b = alpha[start : start + c] / total, beta[start : start + c] / total
        start += c
        for i in range(x.shape[0]):
            uu, vv = u[i].reshape(c, -1), v[i].reshape(c, -1)
            mu, mv = uu.mean(1), vv.mean(1)
            su = ((uu - mu[:, None]) ** 2).mean(1)
            sv = ((vv - mv[:, None]) ** 2).mean(1)
            cov = ((uu - mu[:, None]) * (vv - mv[:, None])).mean(1)
            l_term = (2 * mu * mv + 1e-6) / (mu**2 + mv**2 + 1e-6)
            s_term = (2 * cov + 1e-6) / (su + sv + 1e-6)
            out[i] += (a * l_term).sum() + (b * s_term).sum()
    return 1 - out


def test_dists_matches_reference_math(dists):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    got = dists(x, y)
    assert got.shape == (2,)
    assert torch.allclose(got.double(), _reference_dists(dists, x, y), atol=1e-5)


def test_dists_identity_symmetry_and_order(dists):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    assert dists(x, x).abs().max() <= 1e-6
    y = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    z = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert torch.allclose(dists(x, y), dists(y, x), atol=1e-6)
    assert (dists(x, y) > 0).all() and (dists(x, z) > dists(x, y)).all()


def test_dists_gradient_flows_to_the_input(dists):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    dists(x, torch.rand(1, 3, 32, 32)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in dists.parameters())  # frozen


def test_missing_weights_are_flagged(caplog):
    with caplog.at_level(logging.WARNING):
        d = DISTS()
    assert not d.pretrained and not d.vgg_loaded and not d.head_loaded
    assert "not the published DISTS" in caplog.text


def test_loads_the_three_weight_formats(tmp_path, caplog):
    from safetensors.torch import save_file

    ref = DISTS(seed=5)
    n = sum(CHANNELS)
    head = {"alpha": torch.rand(1, n, 1, 1), "beta": torch.rand(1, n, 1, 1)}
    torch.save(head, tmp_path / "weights.pt")  # DISTS_pytorch format
    tv = {f"features.{k}": v for k, v in ref.features.state_dict().items()}
    tv["classifier.0.weight"] = torch.zeros(4, 4)  # torchvision's full vgg16 file carries these too
    torch.save(tv, tmp_path / "vgg16-397923af.pth")
    save_file({k: v.contiguous() for k, v in tv.items()}, str(tmp_path / "vgg16.safetensors"))

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        d = DISTS([tmp_path / "weights.pt", tmp_path / "vgg16-397923af.pth"])
    assert d.pretrained and "not the published" not in caplog.text
    assert torch.equal(d.alpha, head["alpha"]) and torch.equal(d.features[28].weight, ref.features[28].weight)
    assert DISTS([tmp_path / "vgg16.safetensors"]).vgg_loaded

    stages = {"alpha": head["alpha"], "beta": head["beta"]}  # pyiqa's combined file: stageK.N.*
    for k, v in ref.features.state_dict().items():
        idx = int(k.split(".")[0])
        stage = 1 + sum(idx > e for e in (3, 8, 15, 22))
        stages[f"stage{stage}.{k}"] = v
    torch.save(stages, tmp_path / "DISTS_weights.pth")
    assert DISTS([tmp_path / "DISTS_weights.pth"]).pretrained

    torch.save({"something": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(OptionError):
        DISTS([tmp_path / "bad.pt"])
    with pytest.raises(OptionError):
        DISTS([tmp_path / "missing.pt"])


def test_latent_and_frame_difference_terms():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 4, 3, 5, 5, generator=g), torch.randn(2, 4, 3, 5, 5, generator=g)
    assert latent_loss(a, b).item() == pytest.approx(((a - b) ** 2).mean().item(), rel=1e-6)

    x, y = torch.rand(2, 3, 4, 8, 8, generator=g), torch.rand(2, 3, 4, 8, 8, generator=g)
    ref = np.mean(np.abs(np.diff(x.numpy(), axis=2) - np.diff(y.numpy(), axis=2)))
    assert frame_difference_loss(x, y).item() == pytest.approx(float(ref), rel=1e-5)
    assert frame_difference_loss(x[:, :, :1], y[:, :, :1]).item() == 0.0


def test_pixel_loss_combines_the_terms(dists):
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(1, 3, 2, 32, 32, generator=g), torch.rand(1, 3, 2, 32, 32, generator=g)
    total, terms = PixelLoss(dists, dists_weight=0.5, frame_diff_weight=2.0)(x, y)
    mse = ((x - y) ** 2).mean().item()
    per_frame = [dists(x[:, :, f], y[:, :, f]).mean().item() for f in range(2)]
    fd = (x[:, :, 1] - x[:, :, 0] - (y[:, :, 1] - y[:, :, 0])).abs().mean().item()
    assert terms["mse"] == pytest.approx(mse, rel=1e-5)
    assert terms["dists"] == pytest.approx(0.5 * np.mean(per_frame), rel=1e-5)  # the terms as weighted
    assert terms["frame_diff"] == pytest.approx(2.0 * fd, rel=1e-5)
    assert total.item() == pytest.approx(mse + 0.5 * np.mean(per_frame) + 2.0 * fd, rel=1e-5)
    # images: one frame, no frame-difference term
    _, img_terms = PixelLoss(dists)(x[:, :, :1], y[:, :, :1])
    assert img_terms["frame_diff"] == 0.0
