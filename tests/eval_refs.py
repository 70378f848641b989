"""Reference formulas and tiny weight files shared by the `dove eval` tests (not a test module)."""

from __future__ import annotations

import torch


def dists_reference(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """DISTS as the paper writes it, in float64, from the model's own stage features."""
    fx = [f.double() for f in model.stage_features(x)]
    fy = [f.double() for f in model.stage_features(y)]
    alpha, beta = model.alpha.double().flatten(), model.beta.double().flatten()
    total = alpha.sum() + beta.sum()
    out = torch.zeros(x.shape[0], dtype=torch.float64)
    start = 0
    for u, v, c in zip(fx, fy, model.channels, strict=True):
        a, b = alpha[start : start + c] / total, beta[start : start + c] / total
        start += c
        for i in range(x.shape[0]):
            uu, vv = u[i].reshape(c, -1), v[i].reshape(c, -1)
            mu, mv = uu.mean(1), vv.mean(1)
            su = ((uu - mu[:, None]) ** 2).mean(1)
            sv = ((vv - mv[:, None]) ** 2).mean(1)
            cov = ((uu - mu[:, None]) * (vv - mv[:, None])).mean(1)
            out[i] += (a * (2 * mu * mv + 1e-6) / (mu**2 + mv**2 + 1e-6)).sum()
            out[i] += (b * (2 * cov + 1e-6) / (su + sv + 1e-6)).sum()
    return 1 - out


# ------------------------------------------------------------------------------------------ tiny weight files


def _pickled(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _safetensors(tensors: dict) -> bytes:
    from safetensors.torch import save

    return save({k: v.contiguous() for k, v in tensors.items()})


def princeton_keys(sd: dict) -> dict:
    """torchvision RAFT names -> the princeton-vl release names (raft-things.pth), written out independently."""
    out = {}
    for k, v in sd.items():
        k2 = k.replace("feature_encoder.", "fnet.").replace("context_encoder.", "cnet.")
        k2 = k2.replace("convnormrelu.0.", "conv1.").replace("convnormrelu.1.", "norm1.")
        k2 = k2.replace("fnet.conv.", "fnet.conv2.").replace("cnet.conv.", "cnet.conv2.")
        k2 = k2.replace("convnormrelu1.0.", "conv1.").replace("convnormrelu1.1.", "norm1.")
        k2 = k2.replace("convnormrelu2.0.", "conv2.").replace("convnormrelu2.1.", "norm2.")
        for a, b in (
            ("convcorr1.0.", "convc1."),
            ("convcorr2.0.", "convc2."),
            ("convflow1.0.", "convf1."),
            ("convflow2.0.", "convf2."),
            ("motion_encoder.conv.0.", "encoder.conv."),
            ("motion_encoder.", "encoder."),
        ):
            k2 = k2.replace(a, b)
        for n in "zrq":
            k2 = k2.replace(f"recurrent_block.convgru1.conv{n}.", f"gru.conv{n}1.")
            k2 = k2.replace(f"recurrent_block.convgru2.conv{n}.", f"gru.conv{n}2.")
        k2 = k2.replace("mask_predictor.convrelu.0.", "update_block.mask.0.")
        k2 = k2.replace("mask_predictor.conv.", "update_block.mask.2.")
        out["module." + k2] = v
        if ".downsample.1." in k2:  # the release registers this norm twice
            out["module." + k2.replace(".downsample.1.", ".norm3.")] = v
    return out


def tiny_models(seed: int = 0) -> dict:
    """Narrow random versions of every network the metrics load (same classes, same key layouts)."""
    from dove_cli.metrics.clipiqa import CLIPRN50
    from dove_cli.metrics.dists import DISTS
    from dove_cli.metrics.lpips import LPIPS
    from dove_cli.metrics.raft import RAFT, RAFTConfig

    g = torch.Generator().manual_seed(seed)
    raft = RAFT(
        RAFTConfig(
            feature_layers=(8, 8, 12, 12, 16),
            context_layers=(8, 8, 12, 12, 24),
            motion_corr_layers=(16, 12),
            motion_flow_layers=(8, 8),
            motion_out=16,
            hidden=8,
            flow_head_hidden=16,
            mask_hidden=16,
        )
    )
    clip = CLIPRN50(layers=(1, 1, 1, 1), width=8, embed_dim=16, grid=7, text_width=64, text_layers=1)
    for module in (raft, clip):
        for name, p in module.named_parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.05 + (1.0 if name.endswith("bn1.weight") else 0.0)
    return {
        "dists": DISTS(seed=seed, widths=(4, 8, 8, 16, 16), warn=False),
        "lpips": LPIPS(widths=(8, 12, 16, 12, 12), seed=seed),
        "clip": clip.eval(),
        "raft": raft.eval(),
    }


def tiny_weight_files(models: dict) -> dict[str, bytes]:
    """{weight key: file bytes} in the real files' formats and key layouts."""
    d, lp, clip, raft = models["dists"], models["lpips"], models["clip"], models["raft"]
    vgg = {f"features.{k}": v for k, v in d.features.state_dict().items()}
    vgg["pre_logits.fc1.weight"] = torch.zeros(4, 16, 7, 7)  # timm's converted classifier: ignored
    vgg["head.fc.weight"] = torch.zeros(3, 4)
    alex = {f"features.{k}": v for k, v in lp.features.state_dict().items()}
    alex["classifier.1.weight"] = torch.zeros(4, 4)
    heads = {f"lin{i}.model.1.weight": w.data.clone() for i, w in enumerate(lp.lins)}
    clip_sd = {k: v.half() if v.is_floating_point() else v for k, v in clip.state_dict().items()}
    return {
        "vgg16": _safetensors(vgg),
        "dists": _pickled({"alpha": d.alpha.data.clone(), "beta": d.beta.data.clone()}),
        "alexnet": _pickled(alex),
        "lpips-alex": _pickled(heads),
        "clip-rn50": _safetensors(clip_sd),
        "raft-things": _pickled(princeton_keys(raft.state_dict())),
    }
