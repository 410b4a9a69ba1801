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
    state, expected = model.state_dict(), changed.state_dict()
    # only what realness_features adds or removes may differ: the ImageNet network and its read-out
    others = sorted(
        k
        for k in {*state, *expected}
        if not k.startswith(("feature_net.", "realness_feature_readout")) and (k not in state or k not in expected or state[k].shape != expected[k].shape)
    )
    if others:
        raise ValueError(f"the config change {changes} does not keep the weights: {len(others)} differ, e.g. {others[0]}")
    changed.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)
    return changed.eval()


FEATURE_FOLDS = 5


def _logistic(x: torch.Tensor, targets: torch.Tensor, penalty: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
    """Weights (columns of `x`) and bias (last) of a logistic regression, L2 `penalty` per weight."""
    params = torch.zeros(x.shape[1] + 1, dtype=torch.float64) if start is None else start.clone()
    params.requires_grad_(True)
    optimizer = torch.optim.LBFGS([params], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        with torch.enable_grad():
            loss = F.binary_cross_entropy_with_logits(x @ params[:-1] + params[-1], targets) + (penalty * params[:-1] ** 2).sum()
            loss.backward()
        return loss

    optimizer.step(closure)
    return params.detach()


def _feature_scores(real: torch.Tensor, fakes: torch.Tensor, against: list[torch.Tensor], penalty: float) -> tuple:
    """The ImageNet features' own read-out: a logistic regression of real photos (N, D) against the
    machine colorizations `against` (each (N, D), photo i's fake in row i), standardised features.
    Returns the standardisation (mean, scale), the weights and bias fitted on every photo, and the
    out-of-fold scores of `real` and `fakes` (photo i scored by the fit without its fold), so that
    the calibration that weighs this score does not see it overconfident on its own photos."""
    pool = torch.cat([real, *against])
    mean, scale = pool.mean(0), pool.std(0).clamp_min(1e-6)
    standard = lambda x: (x - mean) / scale
    n = len(real)
    folds = torch.arange(n) % FEATURE_FOLDS
    penalties = torch.full((real.shape[1],), penalty, dtype=torch.float64)

    def fit(keep):
        x = torch.cat([standard(real[keep]), *[standard(a[keep]) for a in against]])
        targets = torch.cat([torch.ones(int(keep.sum())), torch.zeros(int(keep.sum()) * len(against))]).double()
        return _logistic(x, targets, penalties)

    real_scores, fake_scores = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for k in range(FEATURE_FOLDS):
        params = fit(folds != k)
        held = folds == k
        real_scores[held] = standard(real[held]) @ params[:-1] + params[-1]
        fake_scores[held] = standard(fakes[held]) @ params[:-1] + params[-1]
    params = fit(torch.ones(n, dtype=torch.bool))
    return mean, scale, params[:-1], params[-1], real_scores, fake_scores


@torch.no_grad()
def fit_realness_calibration(
    model,
    photos,
    device,
    fakes=None,
    smoothing: float | None = None,
    cues: bool = False,
    cue_penalty: float = 0.01,
    features: bool = False,
    feature_fakes=None,
    feature_penalty: float = 0.01,
) -> dict:
    """Fit p = sigmoid(scale * mean_patch_logit + bias) (Platt scaling) on real photos and
    colorizations, scored through the pipeline users call at the model's working size. `fakes`:
    the colorizations (the detector's family mix); default: the model's own of `photos`.

    Fitted on the raw mean patch logits (not on probabilities, which saturate), against Platt's
    smoothed targets: (N+ + 1) / (N+ + 2) for real and 1 / (N- + 2) for colorized, or
    1 - `smoothing` and `smoothing` when given, which keeps a detector that separates its
    calibration photos perfectly from answering 1.0000. With `cues`, a linear read-out of the
    colour-structure cues (`colorgan_hub.realness.colour_cues`, standardised on these photos) is fitted jointly,
    its weights under an L2 penalty of `cue_penalty`; without, the read-out is reset to none.

    With `features` (a model with `realness_features`), the photos' ImageNet features
    (`realness.photo_features`) first get a read-out of their own: a logistic regression (L2
    `feature_penalty`) of the photos against `feature_fakes` (lists of colorizations aligned with
    `photos`, e.g. the colorizer family's; default: `fakes`), out of fold over
    FEATURE_FOLDS folds of photos. Its score then enters the Platt scaling as one more input,
    and the model keeps the product (one linear read-out of the features). `fakes` must then be
    aligned with `photos` (fake i made from photo i). The calibration then weighs one number, not
    the features' hundreds (docs/realness.md: why).
    Sets model.realness_calibration, model.realness_cues (and model.realness_feature_readout);
    returns the counts, scale, bias, the cue weights, the features' weight norm and the weight of their score."""
    if features and model.realness_features is None:
        raise ValueError("features=True needs a model with realness_features (its ImageNet network)")
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
    inputs = [logits[:, None]]
    if cues:
        values = torch.from_numpy(realness.photo_cues(model, images)).double()
        readout[0], readout[1] = values.mean(0), values.std(0).clamp_min(1e-6)
        inputs.append((values - readout[0]) / readout[1])
    if model.realness_features is not None:
        feature_readout = realness.default_readout(model.feature_net.dim).double()
    if features:
        if n_fake != n_real:
            raise ValueError(f"features need the fakes aligned with the photos: {n_fake} fakes for {n_real} photos")
        against = [fakes] if feature_fakes is None else list(feature_fakes)
        if any(len(family) != n_real for family in against):
            raise ValueError(f"feature_fakes must be lists aligned with the {n_real} photos")
        described = lambda batch: torch.from_numpy(realness.photo_features(model, batch)).double()
        fake_features = described(fakes)
        mean, scale, weight, bias, real_scores, fake_scores = _feature_scores(
            described(photos), fake_features, [fake_features if family is fakes else described(family) for family in against], feature_penalty
        )
        inputs.append(torch.cat([real_scores, fake_scores])[:, None])
    x = torch.cat(inputs, dim=1)  # (N, 1 + cues + 1 feature score)
    penalty = torch.zeros(x.shape[1], dtype=torch.float64)
    if cues:
        penalty[1 : 1 + readout.shape[1]] = cue_penalty
    start = torch.zeros(x.shape[1] + 1, dtype=torch.float64)
    start[0] = 1.0
    params = _logistic(x, targets, penalty, start)  # scale, [cue weights], [feature score weight], bias
    calibration_bias = params[-1]
    if cues:
        readout[2] = params[1 : 1 + readout.shape[1]]
    model.realness_cues.copy_(readout.float())
    if model.realness_features is not None:
        if features:  # weight * (standardised features @ w + b) = standardised features @ (weight * w) + weight * b
            feature_readout[0], feature_readout[1], feature_readout[2] = mean, scale, params[-2] * weight
            calibration_bias = calibration_bias + params[-2] * bias
        model.realness_feature_readout.copy_(feature_readout.float())
    model.realness_calibration.copy_(torch.stack([params[0], calibration_bias]).float())
    return {
        "calibration_photos": n_real,
        "calibration_fakes": n_fake,
        "scale": float(params[0]),
        "bias": float(calibration_bias),
        "targets": [high, low],
        "cue_weights": dict(zip(CUE_NAMES, readout[2].tolist())) if cues else None,
        "feature_weight_norm": float(feature_readout[2].norm()) if features else None,
        "feature_score_weight": float(params[-2]) if features else None,
    }
