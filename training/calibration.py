"""Two different calibrations, named apart:

* `recompute_batchnorm_statistics`: the generator's BatchNorm running statistics, recomputed as
  plain averages over fixed training batches with dropout off, as at inference. EMA-averaged
  statistics (or statistics gathered with dropout on) do not match the weights users get.
* `fit_realness_calibration`: Platt scaling of the discriminator's mean patch logit into the
  realness probability, fitted on held-out photos and the model's colorizations of them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from training.data import DataConfig, channels_last, collate, training_stream


def batchnorm_batches(config: DataConfig, batch_size: int, count: int, process_index=0, num_processes=1) -> list[torch.Tensor]:
    """`count` fixed batches of training L crops (their own seed), for the BatchNorm statistics."""
    batches = []
    if not count:
        return batches
    dataset = training_stream(config, process_index, num_processes, seed=config.seed + 7919, purpose="BatchNorm-statistics")
    for batch in torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        batches.append(channels_last(batch["l"]))
        if len(batches) == count:
            break
    return batches


@torch.no_grad()
def recompute_batchnorm_statistics(module: torch.nn.Module, batches: list[torch.Tensor], device=None) -> None:
    """BatchNorm running statistics recomputed as plain averages over `batches`, with dropout off as
    at inference (torch.optim.swa_utils.update_bn, but it leaves dropout on)."""
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms or not batches:
        return
    was_training, momenta = module.training, [m.momentum for m in norms]
    module.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
        m.train()
    for batch in batches:
        module(batch.to(device) if device is not None else batch)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    module.train(was_training)


@torch.no_grad()
def fit_realness_calibration(model, photos, device) -> dict:
    """Fit p = sigmoid(scale * mean_patch_logit + bias) on photos and the model's colorizations of
    them, through the same pipeline users call, at the model's working size (Platt scaling).
    Sets model.realness_calibration; returns the photo count, scale and bias."""
    if len(photos) < 8:
        raise ValueError(f"only {len(photos)} photos to fit the realness calibration on (at least 8 needed)")
    model.realness_calibration.copy_(torch.tensor([1.0, 0.0]))
    fakes = model.colorize(photos, device=device)
    raw = model.realness(photos + fakes, device=device, allow_grayscale=True)
    logits = torch.logit(torch.tensor(raw, dtype=torch.float64).clamp(1e-12, 1 - 1e-12))
    labels = torch.tensor([1.0] * len(photos) + [0.0] * len(fakes), dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        with torch.enable_grad():
            loss = F.binary_cross_entropy_with_logits(params[0] * logits + params[1], labels)
            loss.backward()
        return loss

    optimizer.step(closure)
    model.realness_calibration.copy_(params.detach().float())
    return {"calibration_photos": len(photos), "scale": float(params[0]), "bias": float(params[1])}
