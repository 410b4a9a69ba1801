"""Networks and the Hub-mixin model: shapes, config.json, save/load equality, strict loading."""

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from colorgan_hub import ColorGAN
from colorgan_hub.networks import PatchDiscriminator, ResNetUNetGenerator, UNetGenerator

from .conftest import TINY


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_unet_shapes_and_range(upsample):
    generator = UNetGenerator(1, 2, width=8, depth=5, upsample=upsample).eval()
    fake_ab = generator(torch.randn(2, 1, 64, 96))
    assert fake_ab.shape == (2, 2, 64, 96)
    assert fake_ab.abs().max() <= 1.0  # tanh


def test_unet_pix2pix_layout():
    generator = UNetGenerator(1, 2, width=64, depth=8, upsample="transpose")
    convs = [m for m in generator.down.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512, 512]
    dropouts = [m for m in generator.up.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) == 3
    assert 54e6 < sum(p.numel() for p in generator.parameters()) < 55e6  # pix2pix's 54.4M


@pytest.mark.parametrize("encoder", ["resnet18", "resnet34"])
def test_resnet_unet_shapes(encoder):
    generator = ResNetUNetGenerator(encoder).eval()
    assert generator(torch.randn(1, 1, 64, 96)).shape == (1, 2, 64, 96)


def test_resnet_encoder_takes_torchvision_weights(tmp_path):
    source = ResNetUNetGenerator("resnet18", in_ch=3)  # stands in for a torchvision RGB checkpoint
    state = {k: v.clone() for k, v in source.encoder.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, 512), torch.randn(1000)
    path = tmp_path / "resnet18.safetensors"
    save_file(state, str(path))
    generator = ResNetUNetGenerator("resnet18")
    generator.load_encoder_weights(path)
    torch.testing.assert_close(generator.encoder.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    torch.testing.assert_close(generator.encoder.layer4[1].conv2.weight, state["layer4.1.conv2.weight"])


def test_patchgan_is_70x70():
    # norm="none": instance norm mixes in whole-image statistics, which would hide the patch size
    discriminator = PatchDiscriminator(3, width=8, n_layers=3, norm="none").eval()
    l, ab = torch.zeros(1, 1, 256, 256, requires_grad=True), torch.zeros(1, 2, 256, 256)
    logits = discriminator(l, ab)
    assert logits.shape == (1, 1, 30, 30)
    logits[0, 0, 15, 15].backward()  # receptive field of one logit = where its gradient is non-zero
    rows, cols = torch.nonzero(l.grad[0, 0], as_tuple=True)
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70


def test_spectral_norm_option():
    with_sn = PatchDiscriminator(3, width=8, spectral_norm=True)
    without = PatchDiscriminator(3, width=8, spectral_norm=False, norm="batch")
    assert any("parametrizations" in k for k in with_sn.state_dict())
    assert not any("parametrizations" in k for k in without.state_dict())


def test_default_architecture_builds():
    model = ColorGAN().eval()
    assert model.image_size == 128  # the bundled model's working size
    assert model.head == "classification"
    with torch.no_grad():
        assert model.generator(torch.randn(1, 1, 128, 128)).shape == (1, 262, 64, 64)  # logits at half size
        assert model.predict_ab(torch.randn(1, 1, 128, 128)).shape == (1, 2, 128, 128)


def test_defaults_are_the_bundled_model_configuration():
    """ColorGAN() is the bundled model's architecture and decoding: its keyword arguments' defaults
    are that model's config.json, key for key."""
    from colorgan_hub import DEFAULT_MODEL

    bundled = json.loads((Path(DEFAULT_MODEL) / "config.json").read_text())
    defaults = {name: p.default for name, p in inspect.signature(ColorGAN.__init__).parameters.items() if name != "self"}
    assert defaults == bundled


def test_configs_saved_before_a_default_changed_load_as_they_were():
    from colorgan_hub.model import LEGACY_CONFIG

    old = ColorGAN(**{**TINY, **{k: v for k, v in LEGACY_CONFIG.items() if k != "head"}})
    assert (old.temperature, old.vividness, old.realness_features, old.guidance) == (0.5, 0.6, None, None)


def test_regression_head_builds():
    model = ColorGAN(**{**TINY, "head": "regression"}).eval()
    with torch.no_grad():
        fake_ab = model.predict_ab(torch.randn(1, 1, 64, 64))
    assert fake_ab.shape == (1, 2, 64, 64) and fake_ab.abs().max() <= 1.0


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="upsample"):
        ColorGAN(**{**TINY, "upsample": "bicubic"})
    with pytest.raises(ValueError, match="encoder"):
        ColorGAN(**{**TINY, "encoder": "vgg16"})
    with pytest.raises(ValueError, match="head"):
        ColorGAN(**{**TINY, "head": "diffusion"})
    with pytest.raises(ValueError, match="temperature"):
        ColorGAN(**{**TINY, "temperature": 0})


def test_save_pretrained_writes_config_and_safetensors(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((tmp_path / "config.json").read_text())
    defaults = {k: p.default for k, p in inspect.signature(ColorGAN.__init__).parameters.items() if k != "self"}
    assert config == {**defaults, **TINY}  # every constructor argument: the whole config
    assert ColorGAN(**config).state_dict().keys() == tiny_model.state_dict().keys()
    card = (tmp_path / "README.md").read_text()
    assert "pipeline_tag: image-to-image" in card and "library_name: colorgan-hub" in card
    assert "realness_calibration" in load_file(str(tmp_path / "model.safetensors"))


def test_save_load_gives_bit_identical_outputs(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    loaded = ColorGAN.from_pretrained(tmp_path)
    assert not loaded.training
    for model in (loaded, tiny_model):  # same layout (the pipeline may have made the fixture channels-last)
        model.to(memory_format=torch.channels_last)
    l, ab = torch.rand(2, 1, 64, 64) * 2 - 1, torch.rand(2, 2, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.generator(l), tiny_model.generator(l))
        assert torch.equal(loaded.predict_ab(l, 0.5), tiny_model.predict_ab(l, 0.5))
        assert torch.equal(loaded.generator.prior, tiny_model.generator.prior)
        assert torch.equal(loaded.realness_logit(l, ab), tiny_model.realness_logit(l, ab))


def test_loading_is_strict(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["realness_calibration"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(RuntimeError, match="realness_calibration"):
        ColorGAN.from_pretrained(tmp_path)


def test_half_precision_file_loads_as_float32(tmp_path, tiny_model):
    tiny_model.save_pretrained(tmp_path)
    state = {k: v.half() for k, v in load_file(str(tmp_path / "model.safetensors")).items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    loaded = ColorGAN.from_pretrained(tmp_path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    l = torch.rand(1, 1, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_ab(l), tiny_model.predict_ab(l), atol=2e-2, rtol=0)


def test_missing_model_offline_raises_a_clear_error():
    from colorgan_hub.model import ModelLoadError, load_model

    with pytest.raises(ModelLoadError, match="not in the local cache"):  # HF_HUB_OFFLINE=1 (conftest)
        load_model("nobody/no-such-colorgan-model")


def test_realness_size_is_config_and_only_moves_the_detector(tmp_path, photo):
    torch.manual_seed(0)
    plain = ColorGAN(**TINY).eval()
    sized = ColorGAN(**{**TINY, "realness_size": 96}).eval()
    sized.load_state_dict(plain.state_dict())
    assert plain.realness_size == plain.image_size == 64  # unset: the detector looks at the colorizer's size
    sized.save_pretrained(tmp_path / "sized")
    loaded = ColorGAN.from_pretrained(tmp_path / "sized")
    assert loaded.realness_size == 96 and json.loads((tmp_path / "sized" / "config.json").read_text())["realness_size"] == 96
    assert np.array_equal(np.asarray(loaded.colorize(photo)), np.asarray(plain.colorize(photo)))  # colorizing is unchanged
    assert loaded.realness(photo) == pytest.approx(plain.realness(photo, size=96))
    assert loaded.realness(photo) != pytest.approx(plain.realness(photo))
    with pytest.raises(ValueError, match="realness_size"):
        ColorGAN(**{**TINY, "realness_size": 8})


def test_a_model_saved_by_the_first_release_loads_as_it_was_saved():
    """tests/data/first-release-model was saved by the first release (commit e7f7c9a): its config
    has no `head` (it meant regression then; a missing key now would mean classification) and its
    generator's output for a seeded input was recorded by that release."""
    from pathlib import Path

    from colorgan_hub.model import load_model

    folder = Path(__file__).parent / "data" / "first-release-model"
    assert "head" not in json.loads((folder / "config.json").read_text())
    model = load_model(str(folder))
    assert model.head == "regression"
    real_l = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        fake_ab = model.predict_ab(real_l)
    np.testing.assert_allclose(fake_ab.numpy(), np.load(folder.parent / "first-release-model-ab.npy"), atol=1e-6)
    assert model.colorize(np.full((40, 30), 128, np.uint8)).size == (30, 40)


def test_weights_that_do_not_fit_the_config_are_one_clear_line(tmp_path, tiny_model):
    from colorgan_hub.model import ModelLoadError, load_model

    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "width": 16}))
    with pytest.raises(ModelLoadError) as info:
        load_model(str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert "its weights do not fit its config.json" in message and "of another shape, e.g. generator." in message
