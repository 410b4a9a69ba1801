"""The classification head (Zhang et al. 2016): ab bins, annealed-mean decoding, soft-encoded and
rebalanced cross-entropy, and the temperature knob through the pipeline."""

import numpy as np
import pytest
import torch
from skimage import color as skcolor

from colorgan_hub import ColorGAN
from colorgan_hub.color import AB_SCALE, ab_bin_centres
from colorgan_hub.networks import ColorClassifier, UNetGenerator
from training.data import ab_histogram
from training.losses import ColourClassLoss, _SoftCrossEntropy

from .conftest import TINY, make_photo


def test_bins_are_the_grid_cells_that_meet_the_srgb_gamut():
    bins = ab_bin_centres(10.0)
    assert bins.shape == (262, 2)
    assert torch.all(bins % 10 == 0)
    centres = {tuple(b) for b in bins.int().tolist()}
    assert (0, 0) in centres
    assert (-110, -110) not in centres and (110, 110) not in centres  # far outside sRGB
    # the primaries' colours (skimage as the independent reference) fall in kept cells
    for rgb in ([1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]):
        _, a, b = skcolor.rgb2lab(np.array([[rgb]], float))[0, 0]
        assert (int(round(a / 10) * 10), int(round(b / 10) * 10)) in centres, rgb


def _classifier(bins):
    return ColorClassifier(UNetGenerator(1, len(bins), width=4, depth=2, half_res_logits=True), bins)


def test_annealed_mean_known_values():
    bins = torch.tensor([[0.5, 0.0], [0.0, -0.5]])
    classifier = _classifier(bins)
    logits = torch.log(torch.tensor([0.75, 0.25])).view(1, 2, 1, 1).expand(1, 2, 2, 2)
    mean = classifier.decode(logits, temperature=1.0)  # the plain mean of the distribution
    torch.testing.assert_close(mean[0, :, 0, 0], torch.tensor([0.375, -0.125]))
    # T = 0.5: p^2 renormalised = (0.9, 0.1)
    torch.testing.assert_close(classifier.decode(logits, 0.5)[0, :, 0, 0], torch.tensor([0.45, -0.05]))
    torch.testing.assert_close(classifier.decode(logits, 0.01)[0, :, 0, 0], bins[0], atol=1e-6, rtol=0)  # the mode
    assert mean.shape == (1, 2, 4, 4)  # decoded at twice the logits' size
    with pytest.raises(ValueError, match="temperature"):
        classifier.decode(logits, 0.0)


def test_decoding_is_the_same_in_either_memory_format():
    """The pipeline's channels-last logits take a faster path; the colours must not change."""
    bins = ab_bin_centres() / AB_SCALE
    classifier = _classifier(bins)
    classifier.prior.copy_(torch.rand(len(bins)) + 0.01)
    logits = torch.randn(2, len(bins), 6, 5, generator=torch.Generator().manual_seed(0)) * 3
    for temperature, correction in ((0.38, 0.0), (1.0, 0.7)):
        planar = classifier.decode(logits, temperature, prior_correction=correction)
        rows = classifier.decode(logits.contiguous(memory_format=torch.channels_last), temperature, prior_correction=correction)
        torch.testing.assert_close(rows, planar, atol=1e-6, rtol=0)


def test_soft_encoding_matches_a_search_over_all_bins():
    bins = ab_bin_centres() / AB_SCALE
    criterion = ColourClassLoss(bins, 10.0, weights=None)
    rng = np.random.default_rng(0)
    rgb = rng.random((1, 3, 20, 20))
    lab = skcolor.rgb2lab(rgb[0].transpose(1, 2, 0))
    ab = torch.from_numpy(lab[..., 1:].transpose(2, 0, 1)[None] / AB_SCALE).float()
    index, soft = criterion.soft_encode(ab)
    distances = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2), bins)
    reference = distances.topk(5, largest=False).indices.sort(dim=1).values
    ours = index.permute(0, 2, 3, 1).reshape(-1, 5).sort(dim=1).values
    assert (ours == reference).float().mean() > 0.99  # exact but for ties between equidistant bins
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(1, 20, 20))
    assert torch.all(soft[:, 0] >= soft[:, -1])  # the nearest bin weighs most
    far = torch.tensor([[-1.0], [-1.0]]).view(1, 2, 1, 1)  # far outside the gamut: searched over all bins
    far_index, far_soft = criterion.soft_encode(far)
    assert torch.isfinite(far_soft).all() and far_index.min() >= 0


def test_rebalancing_weights_rare_colours_more():
    classifier = _classifier(ab_bin_centres() / AB_SCALE)
    grayish = torch.cdist(torch.zeros(1, 2), classifier.bins)[0].argmin()
    classifier.prior.fill_(1e-4)
    classifier.prior[grayish] = 1.0
    classifier.prior /= classifier.prior.sum()
    weights = classifier.rebalancing_weights(0.5)
    assert weights[grayish] < 0.5 * weights.median()  # the common colour is down-weighted
    assert torch.allclose(classifier.rebalancing_weights(1.0), torch.ones(len(weights)))  # mix 1: no rebalancing
    classifier.prior.fill_(1 / len(weights))
    # a flat prior stays flat after smoothing but for the grid's border: weights near 1
    assert classifier.rebalancing_weights(0.5).median() == pytest.approx(1.0, rel=0.2)


def test_prior_correction_divides_the_rebalancing_back_out():
    bins = torch.tensor([[0.0, 0.0], [0.5, 0.0]])
    classifier = _classifier(bins)
    classifier.prior.copy_(torch.tensor([0.9, 0.1]))  # gray common, red rare: red weighted up
    weights = classifier.rebalancing_weights(0.5)
    assert weights[1] > weights[0]
    logits = torch.log(torch.tensor([0.5, 0.5]) * weights).view(1, 2, 1, 1)  # a rebalanced 50/50 prediction
    vivid = float(classifier.decode(logits, 1.0, prior_correction=0.0)[0, 0, 0, 0])
    corrected = float(classifier.decode(logits, 1.0, prior_correction=1.0)[0, 0, 0, 0])
    assert vivid == pytest.approx(float(0.5 * weights[1] / weights.sum()), rel=1e-5)
    assert corrected == pytest.approx(0.25, rel=1e-5)  # the unweighted 50/50: a = 0.5 x 0.5


def test_soft_cross_entropy_value_and_gradient_match_autograd():
    torch.manual_seed(0)
    logits = torch.randn(2, 7, 3, 4, dtype=torch.float64, requires_grad=True)
    index = torch.randint(0, 7, (2, 3, 3, 4))
    soft = torch.softmax(torch.randn(2, 3, 3, 4, dtype=torch.float64), dim=1)
    weights = torch.rand(2, 3, 4, dtype=torch.float64)
    reference = (weights * -(soft * torch.log_softmax(logits, 1).gather(1, index)).sum(1)).mean()
    ours = _SoftCrossEntropy.apply(logits, index, soft, weights)
    torch.testing.assert_close(ours, reference)
    torch.testing.assert_close(torch.autograd.grad(ours, logits)[0], torch.autograd.grad(reference, logits)[0])


def test_training_on_the_loss_learns_the_colour():
    """A few steps of the loss on a constant-colour target move the decoded colour onto it."""
    torch.manual_seed(0)
    bins = ab_bin_centres() / AB_SCALE
    classifier = _classifier(bins)
    criterion = ColourClassLoss(bins, 10.0, weights=None)
    l = torch.rand(4, 1, 16, 16) * 2 - 1
    target = torch.tensor([-0.2, 0.3]).view(1, 2, 1, 1).expand(4, 2, 16, 16)  # a green
    optimizer = torch.optim.Adam(classifier.parameters(), 1e-2)
    for _ in range(60):
        loss = criterion(classifier(l), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        decoded = classifier.decode(classifier(l), 0.38).mean(dim=(0, 2, 3))
    assert torch.linalg.vector_norm(decoded - target[0, :, 0, 0]) * AB_SCALE < 5.0  # within 5 Lab units


def test_histogram_counts_every_pixel_at_its_nearest_bin():
    bins = torch.tensor([[0.0, 0.0], [0.5, 0.5]])
    ab = torch.tensor([[0.1, 0.4], [0.0, 0.45]]).view(1, 2, 1, 2)  # pixels (0.1, 0.0) and (0.4, 0.45)
    assert ab_histogram(ab, bins).tolist() == [1.0, 1.0]


def test_temperature_reaches_the_pipeline():
    torch.manual_seed(0)
    model = ColorGAN(**TINY).eval()
    with torch.no_grad():  # a peaked, non-uniform colour distribution, as a trained model has
        model.generator.body.up[-1][-1].bias.copy_(torch.randn(len(model.generator.bins)) * 3)
    photo = make_photo(64, 64).convert("L")
    vivid = np.asarray(model.colorize(photo, temperature=0.1), float)
    safe = np.asarray(model.colorize(photo, temperature=1.0), float)
    default = np.asarray(model.colorize(photo), float)
    assert np.abs(vivid - safe).mean() > 2.0  # 8-bit levels
    assert np.array_equal(default, np.asarray(model.colorize(photo, temperature=model.temperature), float))
    with pytest.raises(ValueError, match="temperature"):
        model.colorize(photo, temperature=-1)


def test_regression_models_ignore_no_argument(tiny_model_dir):
    model = ColorGAN(**{**TINY, "head": "regression"}).eval()
    out = model.colorize(make_photo(64, 64).convert("L"), temperature=0.3)  # accepted, no effect on regression
    assert out.size == (64, 64)
