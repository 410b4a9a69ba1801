"""Each metric on known values, and against scikit-image where it has the reference."""

import numpy as np
import pytest
from skimage import color as skcolor
from skimage.metrics import structural_similarity

from colorgan_hub import metrics


def _rand(seed, shape=(2, 32, 40, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_psnr_known_values():
    a = np.full((1, 8, 8, 3), 100, np.uint8)
    b = a + 10  # mse = 100
    assert metrics.psnr(a, b)[0] == pytest.approx(10 * np.log10(255**2 / 100))
    assert metrics.psnr(a, a)[0] == 100.0  # identical: the cap
    pair = metrics.psnr(np.concatenate([a, a]), np.concatenate([b, a]))
    assert pair.shape == (2,)  # per image, averaged by the caller


def test_ssim_matches_skimage():
    pred, target = _rand(0), _rand(1)
    target[1] = pred[1] // 2 + 60  # a related pair too
    ours = metrics.ssim(pred, target)
    for i in range(2):
        ref = structural_similarity(pred[i], target[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)
        assert ours[i] == pytest.approx(ref, abs=1e-5)
    assert metrics.ssim(pred, pred) == pytest.approx([1.0, 1.0])


def test_colorfulness_known_values():
    gray = np.full((1, 16, 16, 3), 128, np.uint8)
    assert metrics.colorfulness(gray)[0] == 0.0
    red = np.zeros((1, 16, 16, 3), np.uint8)
    red[..., 0] = 255  # rg = 255, yb = 127.5, no spread
    assert metrics.colorfulness(red)[0] == pytest.approx(0.3 * np.hypot(255, 127.5))
    # the absolute-value variant: half red, half green does not cancel in the mean
    mixed = np.zeros((1, 16, 16, 3), np.uint8)
    mixed[:, :8, :, 0], mixed[:, 8:, :, 1] = 255, 255
    assert metrics.colorfulness(mixed)[0] == pytest.approx(0.3 * np.hypot(255, 127.5))


def test_delta_colorfulness():
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    gray = np.full((16, 16, 3), 90, np.uint8)
    assert metrics.delta_colorfulness([gray, gray], [red, gray]) == pytest.approx(0.15 * np.hypot(255, 127.5))


def test_ab_auc_known_values():
    img = _rand(2, (1, 16, 16, 3))
    assert metrics.ab_auc(img, img)[0] == pytest.approx(1.0)
    gray = np.full((1, 16, 16, 3), 128, np.uint8)
    blue = np.zeros((1, 16, 16, 3), np.uint8)
    blue[..., 2] = 255  # far from gray in ab: error ~134 Lab units
    from skimage.color import rgb2lab

    err = np.hypot(*rgb2lab(blue[0, 0, 0] / 255.0)[1:]) - np.hypot(*rgb2lab(gray[0, 0, 0] / 255.0)[1:])
    expected = (150 - np.ceil(err) + 1) / 151  # thresholds at or above the error count
    assert metrics.ab_auc(gray, blue)[0] == pytest.approx(expected, abs=1 / 151)


def test_detection_metrics_known_values():
    labels = [1, 1, 0, 0]
    assert metrics.roc_auc([0.9, 0.8, 0.2, 0.1], labels) == 1.0
    assert metrics.roc_auc([0.1, 0.2, 0.8, 0.9], labels) == 0.0
    assert metrics.roc_auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5
    assert metrics.roc_auc([0.9, 0.3, 0.6, 0.1], labels) == 0.75
    assert metrics.average_precision([0.9, 0.8, 0.2, 0.1], labels) == 1.0
    # ranked: real (0.9), fake (0.6), real (0.3), fake (0.1) -> precision 1 at recall .5, 2/3 at recall 1
    assert metrics.average_precision([0.9, 0.3, 0.6, 0.1], labels) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert metrics.accuracy([0.9, 0.4, 0.6, 0.1], labels) == 0.5
    assert metrics.hter([0.9, 0.4, 0.6, 0.1], labels) == pytest.approx((0.5 + 0.5) / 2)
    with pytest.raises(ValueError):
        metrics.roc_auc([0.2, 0.3], [1, 1])


def test_ece_known_values():
    # perfectly calibrated bin: 10 predictions of 0.8 with 8 real -> 0
    probs, labels = [0.8] * 10, [1] * 8 + [0] * 2
    assert metrics.expected_calibration_error(probs, labels) == pytest.approx(0.0)
    # overconfident: all 0.99 but half wrong -> |0.5 - 0.99|
    assert metrics.expected_calibration_error([0.99] * 4, [1, 1, 0, 0]) == pytest.approx(0.49)
    # two bins, weighted: p=0.1 (conf .9) all fake (acc 1) and p=0.7 (conf .7) half right
    ece = metrics.expected_calibration_error([0.1, 0.1, 0.7, 0.7], [0, 0, 1, 0])
    assert ece == pytest.approx(0.5 * 0.1 + 0.5 * 0.2)


def test_detection_report_keys():
    report = metrics.detection_report([0.9, 0.2, 0.7, 0.4], [1, 0, 1, 0])
    assert set(report) == {"auc", "ap", "accuracy", "hter", "ece"} and report["auc"] == 1.0


def _lab_image(l, a, b, size=4):
    """uint8 RGB (size, size, 3) of one Lab colour (skimage as the independent reference)."""
    lab = np.broadcast_to(np.array([l, a, b], float), (size, size, 3))
    return (skcolor.lab2rgb(lab) * 255 + 0.5).astype(np.uint8)


def _hue_lab(chroma, hue_degrees, l=60):
    h = np.radians(hue_degrees)
    return l, chroma * np.cos(h), chroma * np.sin(h)


@pytest.mark.parametrize("truth_hue, family", [(0, "red"), (350, "red"), (60, "orange/yellow"), (135, "green"), (220, "blue/cyan"), (300, "purple")])
def test_hue_hits_known_values(truth_hue, family):
    truth = _lab_image(*_hue_lab(30, truth_hue))
    close = _lab_image(*_hue_lab(20, truth_hue + 20))  # 20 degrees off, chroma 20: a hit
    far = _lab_image(*_hue_lab(30, truth_hue + 45))  # 45 degrees off: a miss
    faint = _lab_image(*_hue_lab(5, truth_hue))  # right hue, chroma under 7.5: a miss
    for pred, hits in ((close, 16), (far, 0), (faint, 0)):
        counts = metrics.hue_hits(pred, truth)
        assert counts[family].tolist() == [hits, 16]
        assert sum(c[1] for c in counts.values()) == 16  # every pixel in its one family


def test_hue_rates_pool_pixels_and_skip_gray_truths():
    gray = _lab_image(50, 0, 0)
    blue = _lab_image(*_hue_lab(40, 250))
    counts = {name: np.zeros(2, np.int64) for name in metrics.HUE_FAMILIES}
    for pred, truth in ((gray, gray), (blue, blue), (gray, blue)):  # a gray truth judges no pixel
        for name, c in metrics.hue_hits(pred, truth).items():
            counts[name] += c
    rates = metrics.hue_rates(counts)
    assert rates["blue/cyan"] == 0.5  # 16 hits of 32 chromatic pixels
    assert rates["all"] == 0.5 and rates["macro"] == 0.5  # only one family present
    assert np.isnan(rates["red"])


def test_a_colour_cast_fails_hue_rates_on_a_varied_photo():
    """A constant warm cast matches orange pixels and nothing else."""
    hues = [0, 60, 135, 220, 300]
    truth = np.concatenate([_lab_image(*_hue_lab(35, h)) for h in hues], axis=1)
    cast = np.concatenate([_lab_image(*_hue_lab(25, 60)) for _ in hues], axis=1)
    rates = metrics.hue_rates(metrics.hue_hits(cast, truth))
    assert rates["orange/yellow"] == 1.0 and rates["macro"] == pytest.approx(0.2)
