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

from colorgan_hub import realness
from colorgan_hub.realness import CUE_NAMES, default_cue_readout
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
    # frozen layers (a pretrained encoder's early stages) keep the statistics they were trained with
    norms = [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and (m.weight is None or m.weight.requires_grad)]
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


def with_config(model, **changes):
    """The same weights under a config with `changes`, e.g. a new working size to calibrate at (a
    ColorGAN's constructor kwargs are its whole config)."""
    changed = type(model)(**{**model._hub_mixin_config, **changes})
    changed.load_state_dict(model.state_dict())
    return changed.eval()


@torch.no_grad()
def fit_realness_calibration(model, photos, device, fakes=None, smoothing: float | None = None, cues: bool = False,
                             cue_penalty: float = 0.01) -> dict:
    """Fit p = sigmoid(scale * mean_patch_logit + bias) (Platt scaling) on real photos and
    colorizations, scored through the pipeline users call at the model's working size. `fakes`:
    the colorizations (the detector's family mix); default: the model's own of `photos`.

    Fitted on the raw mean patch logits (not on probabilities, which saturate), against Platt's
    smoothed targets: (N+ + 1) / (N+ + 2) for real and 1 / (N- + 2) for colorized, or
    1 - `smoothing` and `smoothing` when given, which keeps a detector that separates its
    calibration photos perfectly from answering 1.0000. With `cues`, a linear read-out of the
    colour-structure cues (`colorgan_hub.realness.colour_cues`, standardised on these photos) is fitted jointly,
    its weights under an L2 penalty of `cue_penalty`; without, the read-out is reset to none.
    Sets model.realness_calibration and model.realness_cues; returns the counts, scale, bias
    and the cue weights."""
    if len(photos) < 8:
        raise ValueError(f"only {len(photos)} photos to fit the realness calibration on (at least 8 needed)")
    if fakes is None:
        fakes = model.colorize(photos, device=device)
    images = list(photos) + list(fakes)
    raw = realness.logits(model, images, device=device, allow_grayscale=True, calibrated=False)
    logits = torch.tensor(raw, dtype=torch.float64)
    n_real, n_fake = len(photos), len(fakes)
    high, low = ((n_real + 1) / (n_real + 2), 1 / (n_fake + 2)) if smoothing is None else (1 - smoothing, smoothing)
    targets = torch.tensor([high] * n_real + [low] * n_fake, dtype=torch.float64)
    readout = default_cue_readout().double()
    if cues:
        values = torch.from_numpy(realness.photo_cues(model, images)).double()
        readout[0], readout[1] = values.mean(0), values.std(0).clamp_min(1e-6)
        standard = (values - readout[0]) / readout[1]
    params = torch.zeros(2 + (readout.shape[1] if cues else 0), dtype=torch.float64)
    params[0] = 1.0
    params.requires_grad_(True)
    optimizer = torch.optim.LBFGS([params], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        with torch.enable_grad():
            logit = params[0] * logits + params[1]
            penalty = 0.0
            if cues:
                logit = logit + standard @ params[2:]
                penalty = cue_penalty * (params[2:] ** 2).sum()
            loss = F.binary_cross_entropy_with_logits(logit, targets) + penalty
            loss.backward()
        return loss

    optimizer.step(closure)
    model.realness_calibration.copy_(params[:2].detach().float())
    if cues:
        readout[2] = params[2:].detach()
    model.realness_cues.copy_(readout.float())
    return {"calibration_photos": n_real, "calibration_fakes": n_fake, "scale": float(params[0]), "bias": float(params[1]),
            "targets": [high, low], "cue_weights": dict(zip(CUE_NAMES, readout[2].tolist())) if cues else None}
