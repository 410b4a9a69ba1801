"""`ColorGAN`: generator + discriminator + realness calibration, saved and loaded the Hub way.

The constructor's keyword arguments are the whole config (written to config.json by
`PyTorchModelHubMixin`); the weights are one `model.safetensors`. Loading is strict and casts
half-precision files back to the model's float32, so a shipped fp16 file loads like any other.
"""

from __future__ import annotations

import contextvars
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import torch
from huggingface_hub import PyTorchModelHubMixin, constants, errors, hf_hub_download
from huggingface_hub.utils import validate_repo_id
from safetensors.torch import load_file, save_file
from torch import nn

from . import pipeline, realness
from .color import AB_SCALE, ab_bin_centres
from .guidance import NO_GUIDANCE, Guidance, Guide, HintError
from .image_io import DEFAULT_MAX_PIXELS
from .networks import (
    ColorClassifier,
    EfficientNetUNetGenerator,
    PatchDiscriminator,
    ResNetUNetGenerator,
    UNetGenerator,
    gaussian_blur,
    init_weights,
    smooth_gumbel_noise,
)
from .options import check_options

HEADS = ("classification", "regression")
VARIATION_BLUR = 3.0  # px at a 128 px working size: a variation's change of colour is smoothed over this (no salt and pepper)

# What a config.json without a key meant when it was saved: keys added after the first release
# (0.1.0), and keys whose default has changed since. Models on the Hub keep loading as they were
# saved: a key added later gets an entry here, and so does a default that changes. The defaults
# themselves are the bundled model's configuration (`ColorGAN()` is its architecture).
LEGACY_CONFIG = {
    "head": "regression",  # the first release had the regression head only
    # the defaults before they became the bundled model's configuration
    "encoder": "unet",
    "temperature": 0.5,
    "vividness": 0.6,
    "realness_size": None,
    "realness_features": None,
    "guidance": None,  # models saved before guidance take no hints
}

# The classification bins of a model being loaded (`_from_pretrained`), for its constructor.
_SAVED_BINS: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("saved_bins", default=None)

_CARD_TEMPLATE = Path(__file__).with_name("model_card.md")


class ColorGAN(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="colorgan-hub",
    pipeline_tag="image-to-image",
    license="mit",
    tags=["colorization", "image-colorization", "gan", "pix2pix", "lab"],
    repo_url="https://github.com/colorgan-hub/colorgan-hub",
    model_card_template=_CARD_TEMPLATE.read_text(encoding="utf-8"),
):
    """Automatic colorization GAN: L -> ab generator, conditional PatchGAN, calibrated realness.

    Args:
        image_size: working resolution (long side, px) of `colorize` (and of `realness` when
            `realness_size` is not set).
        realness_size: working resolution (long side, px) at which `realness` looks at a photo,
            the size its calibration was fitted at; None: `image_size`.
        head: "classification" (a distribution over quantised ab bins, decoded by the annealed
            mean at `temperature`; Zhang et al. 2016) or "regression" (ab directly, pix2pix).
        bin_size: ab grid step of the classification bins, in Lab units.
        temperature: default annealed-mean temperature of the classification head (1: the
            distribution's mean; towards 0: its single most likely colour).
        class_rebalancing: the classification loss's rebalancing mix (Zhang et al.'s lambda; 1: none).
        vividness: default vividness of the classification head, 0 to 1: how much of the class
            rebalancing (which favours rare, saturated colours) is kept when decoding. 1 keeps
            all of it (bold, riskier colour), 0 divides it back out (the unweighted
            distribution: safe, muted colour).
        encoder: "unet" (pix2pix U-Net), "efficientnet-lite0" / "-lite1" / "-lite2" (U-Net on an
            ImageNet-pretrained EfficientNet-Lite encoder) or "resnet18" / "resnet34".
        width: pix2pix U-Net base channels; with an EfficientNet encoder, the decoder's narrowest
            width (its stages are width x 6, 3, 2, 1).
        depth: pix2pix U-Net number of stride-2 levels.
        upsample: "bilinear" (3x3 conv then bilinear x2), "resize" (nearest x2 then 3x3 conv),
            or "transpose" (pix2pix's transposed conv, prone to checkerboards).
        dropout: dropout in the three innermost U-Net decoder blocks.
        d_width, d_layers: PatchGAN base channels and depth (3 gives 70x70 patches).
        d_norm: "instance", "batch" or "none" in the discriminator.
        spectral_norm: spectral normalisation on every discriminator convolution.
        realness_features: None, or an EfficientNet-Lite variant ("efficientnet-lite0"): the
            realness score also reads that ImageNet network's pooled features of the photo (a
            frozen RGB body saved with the model, and a fitted linear read-out).
        variation_strength: classification head: how far `colorize(variations=N)` strays from the
            default colorization (the scale of the smooth Gumbel noise on the logits; 1 draws from
            the distribution as decoded, lower stays nearer its most likely colours).
        guidance: None, or "attention" / "maps": the model takes point hints and a reference photo
            (`guidance.Guide`, on an EfficientNet encoder with the classification head).
    """

    def __init__(
        self,
        image_size: int = 128,
        head: str = "classification",
        bin_size: float = 10.0,
        temperature: float = 0.7,
        class_rebalancing: float = 0.5,
        vividness: float = 0.9,
        encoder: str = "efficientnet-lite2",
        width: int = 32,
        depth: int = 7,
        upsample: str = "bilinear",
        dropout: float = 0.5,
        d_width: int = 64,
        d_layers: int = 3,
        d_norm: str = "instance",
        spectral_norm: bool = True,
        realness_size: int | None = 160,
        variation_strength: float = 0.5,
        realness_features: str | None = "efficientnet-lite0",
        guidance: str | None = "attention",
    ):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        check_options(temperature=temperature, vividness=vividness, size=image_size)
        if not 0 <= class_rebalancing <= 1:
            raise ValueError(f"class_rebalancing must be in [0, 1], got {class_rebalancing}")
        if variation_strength < 0:
            raise ValueError(f"variation_strength must be >= 0, got {variation_strength}")
        if realness_size is not None and realness_size < 16:
            raise ValueError(f"realness_size must be at least 16 px, got {realness_size}")
        self.image_size, self.head, self.bin_size, self.temperature = image_size, head, bin_size, temperature
        self.realness_size = realness_size or image_size
        self.class_rebalancing, self.vividness, self.variation_strength = class_rebalancing, vividness, variation_strength
        self.ab_scale = AB_SCALE
        classify = head == "classification"
        bins = (_SAVED_BINS.get() if _SAVED_BINS.get() is not None else ab_bin_centres(bin_size) / AB_SCALE) if classify else None
        out_ch = len(bins) if classify else 2
        if encoder == "unet":
            body = UNetGenerator(1, out_ch, width=width, depth=depth, upsample=upsample, dropout=dropout, half_res_logits=classify)
        elif encoder.startswith("efficientnet"):
            body = EfficientNetUNetGenerator(encoder, out_ch, width=width, upsample=upsample, half_res_logits=classify)
        else:
            body = ResNetUNetGenerator(encoder, 1, out_ch, upsample=upsample, half_res_logits=classify)
        self.generator = ColorClassifier(body, bins) if classify else body
        self.guidance = guidance
        if guidance is not None and not (classify and encoder.startswith("efficientnet")):
            raise ValueError(f"guidance={guidance!r} needs the classification head on an EfficientNet encoder: pass guidance=None for this model")
        self.discriminator = PatchDiscriminator(3, width=d_width, n_layers=d_layers, norm=d_norm, spectral_norm=spectral_norm)
        init_weights(self.generator)
        init_weights(self.discriminator)
        if guidance is not None:
            self.guide = Guide(guidance, body.stage_channels, bins)  # its own initialisation (zero where it enters)
        # Platt scaling of the mean patch logit: p = sigmoid(scale * logit + bias); fitted in training.
        self.register_buffer("realness_calibration", torch.tensor([1.0, 0.0]))
        # A linear read-out of the colour-structure cues (`realness.colour_cues`) added to that logit:
        # rows mean, scale and weight of each cue, fitted with the calibration (weight 0: no cues).
        self.register_buffer("realness_cues", realness.default_cue_readout())
        # Optionally a frozen ImageNet network's pooled features of the photo and their read-out
        # (rows mean, scale, weight), added the same way.
        self.realness_features = realness_features
        if realness_features is not None:
            self.feature_net = realness.ImageNetFeatures(realness_features)
            self.register_buffer("realness_feature_readout", realness.default_readout(self.feature_net.dim))

    def predict_ab(
        self,
        real_l: torch.Tensor,
        temperature: float | None = None,
        vividness: float | None = None,
        coarse_scale: float | None = None,
        guidance: Guidance | None = None,
    ) -> torch.Tensor:
        """Normalised L (B, 1, H, W) -> normalised ab (B, 2, H, W); `temperature` and `vividness`
        (classification head only) default to the config's; `coarse_scale`: see `class_logits`;
        `guidance`: hints and reference palettes (`guidance.Guidance`, a model with `guidance`)."""
        if self.head == "regression":
            if coarse_scale:
                raise ValueError("multiscale needs a model with the classification head (this one regresses ab)")
            if guidance is not None and not guidance.empty:
                raise HintError(NO_GUIDANCE)
            return self.generator(real_l)
        return self.decode(self.class_logits(real_l, coarse_scale, guidance), temperature, vividness)

    def class_logits(self, real_l: torch.Tensor, coarse_scale: float | None = None, guidance: Guidance | None = None) -> torch.Tensor:
        """The classification head's logits (B, K, H/2, W/2) of normalised L (B, 1, H, W).

        `coarse_scale` (0 to 1, e.g. 2/3): the network also sees the photo shrunk by that factor,
        and the two colour distributions are averaged, as log-probabilities, on the full grid
        (multi-scale inference: the photo at two sizes agrees on more colours than at one).
        `guidance`: the hints and reference palettes steer both passes (guided log-probabilities;
        without any, the plain logits)."""
        logits = self.guided_logits(real_l, guidance)
        if not coarse_scale:
            return logits
        if not 0 < coarse_scale < 1:
            raise ValueError(f"coarse_scale must be between 0 and 1, got {coarse_scale}")
        height, width = real_l.shape[-2:]
        h, w = max(1, round(height * coarse_scale)), max(1, round(width * coarse_scale))
        small = nn.functional.interpolate(real_l.float(), size=(h, w), mode="area").to(real_l.dtype)
        multiple = self.generator.multiple
        small = nn.functional.pad(small, (0, -w % multiple, 0, -h % multiple), mode="replicate")  # the network's multiple; cropped below
        small_guidance = None if guidance is None else guidance.scaled(w / width)
        coarse = self.guided_logits(small, small_guidance)[..., : (h + 1) // 2, : (w + 1) // 2].float()  # the photo's part, at half resolution as the logits
        coarse = nn.functional.interpolate(coarse, size=logits.shape[-2:], mode="bilinear", align_corners=False)
        mixed = (torch.log_softmax(logits.float(), dim=1) + torch.log_softmax(coarse, dim=1)) / 2
        if logits.is_contiguous(memory_format=torch.channels_last) and not logits.is_contiguous():
            mixed = mixed.contiguous(memory_format=torch.channels_last)  # decode's fast path
        return mixed

    def guided_logits(self, real_l: torch.Tensor, guidance: Guidance | None = None) -> torch.Tensor:
        """One pass of the classification generator: guided log-probabilities (`Guide`) when
        `guidance` holds hints or a palette, else its plain logits, bit for bit."""
        if guidance is None or guidance.empty:
            return self.generator(real_l)
        if self.guidance is None:
            raise HintError(NO_GUIDANCE)
        guidance = guidance.to(real_l.device)
        state = {}  # what the hook passes to `mix`, for this call only
        logits = self.generator(real_l, hook=self.guide.hook(guidance, real_l.shape[-2:], state))
        guided = self.guide.mix(logits, guidance, state, self.generator.bins, self.generator.prior)
        if logits.is_contiguous(memory_format=torch.channels_last) and not logits.is_contiguous():
            guided = guided.contiguous(memory_format=torch.channels_last)  # decode's fast path
        return guided

    def sample_ab(
        self,
        real_l: torch.Tensor,
        variations: int,
        seed: int | Sequence[int] = 0,
        temperature: float | None = None,
        vividness: float | None = None,
        coarse_scale: float | None = None,
        guidance: Guidance | None = None,
    ) -> torch.Tensor:
        """Normalised L (B, 1, H, W) -> `variations` plausible colorizations (N, B, 2, H, W), each
        decoded from the logits plus smooth Gumbel noise (`networks.smooth_gumbel_noise`, scaled by
        `variation_strength`), so each region of a photo takes one colour; the change the whole
        photo shares (the median over its pixels: a tint) is taken out, so variations differ by
        region, not by cast. `seed`: one for the
        batch or one per photo; variation n of a photo depends on (its seed, n) and its shape
        alone, not on the rest of the batch. `coarse_scale`, `guidance`: see `class_logits` (each
        variation keeps the hints). Classification head."""
        if self.head != "classification":
            raise ValueError("variations need a model with the classification head (this one regresses ab)")
        logits = self.class_logits(real_l, coarse_scale, guidance)  # (B, K, h, w), once for all variations
        default = self.decode(logits, temperature, vividness)  # (B, 2, H, W)
        mean_chroma = lambda ab: ab.norm(dim=1).mean(dim=(1, 2)).view(-1, 1, 1, 1)  # (B, 1, 1, 1)
        default_chroma = mean_chroma(default)
        blur = VARIATION_BLUR * max(real_l.shape[-2:]) / 128
        samples = []
        seeds = [seed] * len(real_l) if isinstance(seed, int) else list(seed)
        for n in range(variations):
            noise = torch.cat([smooth_gumbel_noise(self.generator.bins, logits.shape[2:], seed=(s * 1_000_003 + n) % 2**63) for s in seeds])
            noise = noise * self.variation_strength  # (B, K, h, w)
            change = gaussian_blur(self.decode(logits, temperature, vividness, noise=noise) - default, blur)  # (B, 2, H, W)
            # the change most of the photo shares is a tint, not another colorization: take it out (the median
            # over the pixels, so that a region's own change stays and is not spread over the rest)
            sample = default + change - change.flatten(2).median(dim=2).values[:, :, None, None]
            # noisy logits anneal to bolder colour than the default's: keep each photo's mean chroma
            samples.append(sample * (default_chroma / mean_chroma(sample).clamp_min(1e-6)))
        return torch.stack(samples)

    def decode(
        self,
        logits: torch.Tensor,
        temperature: float | None = None,
        vividness: float | None = None,
        generator: nn.Module | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Classification logits -> normalised ab with this model's decoding settings (of
        `generator`, default its own: training decodes with its EMA or wrapped copy)."""
        generator = generator or self.generator
        temperature = self.temperature if temperature is None else temperature
        vividness = self.vividness if vividness is None else vividness
        return generator.decode(logits, temperature, prior_correction=1.0 - vividness, rebalancing=self.class_rebalancing, noise=noise)

    def realness_logit(
        self, real_l: torch.Tensor, ab: torch.Tensor, calibrated: bool = True, cues: torch.Tensor | None = None, features: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logit (B,) that (L, ab) is a real colour photo, calibrated (or the raw mean patch
        logit); inputs normalised. `cues` (B, len(CUE_NAMES)), the photos' `colour_cues`, and
        `features` (B, feature_net.dim), their ImageNet features, add their fitted read-outs to the
        calibrated logit."""
        raw = self.discriminator(real_l, ab).float().mean(dim=(1, 2, 3))  # mean of the (B, 1, h, w) patch logits
        if not calibrated:
            return raw
        scale, bias = self.realness_calibration
        logit = scale * raw + bias
        if cues is not None:
            logit = logit + self.cue_logit(cues.to(logit.device))
        if features is not None:
            logit = logit + realness.readout_logit(self.realness_feature_readout, features.to(logit.device))
        return logit

    @property
    def uses_features(self) -> bool:
        """Whether the realness score reads ImageNet features (a fitted read-out)."""
        return self.realness_features is not None and bool(self.realness_feature_readout[2].abs().sum() > 0)

    def cue_logit(self, cues: torch.Tensor) -> torch.Tensor:
        """The cues' part of the realness logit (B,)."""
        return realness.readout_logit(self.realness_cues, cues)

    @property
    def uses_cues(self) -> bool:
        """Whether the realness score reads the colour-structure cues (a fitted read-out)."""
        return bool(self.realness_cues[2].abs().sum() > 0)

    def colorize(
        self,
        images,
        size: int | None = None,
        batch_size: int = 8,
        device=None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        temperature: float | None = None,
        vividness: float | None = None,
        return_exceptions: bool = False,
        upscale: int = 1,
        variations: int | None = None,
        seed: int = 0,
        multiscale: bool | None = None,
        hints=None,
        reference=None,
    ):
        """Colorize a photo (or a list): see `colorgan_hub.pipeline.colorize`."""
        return pipeline.colorize(
            self,
            images,
            size=size,
            batch_size=batch_size,
            device=device,
            max_pixels=max_pixels,
            temperature=temperature,
            vividness=vividness,
            return_exceptions=return_exceptions,
            upscale=upscale,
            variations=variations,
            seed=seed,
            multiscale=multiscale,
            hints=hints,
            reference=reference,
        )

    def suggest_colours(self, image, x: float, y: float, k: int = 6, hints=None, reference=None, **options):
        """The k most likely colours at (x, y) of a photo, most likely first: see
        `colorgan_hub.pipeline.suggest_colours`."""
        return pipeline.suggest_colours(self, image, x, y, k=k, hints=hints, reference=reference, **options)

    def colorize_video(self, source, destination, **options):
        """Colorize a video file into `destination` (same size, rate, audio): see
        `colorgan_hub.video.colorize_video` for the options. Returns a `VideoResult`."""
        from .video import colorize_video

        return colorize_video(self, source, destination, **options)

    def colorize_frames(self, frames, **options):
        """Colorize an iterator of frames ((H, W) gray or (H, W, 3) RGB uint8 arrays, or PIL
        images) in order, with temporal fusion: an iterator of RGB uint8 arrays. Options as
        `colorgan_hub.video.VideoColorizer` (size, stability, vividness, temperature, ...)."""
        from .video import VideoColorizer

        return VideoColorizer(self, **options).frames(frames)

    def realness(
        self,
        images,
        size: int | None = None,
        batch_size: int = 8,
        device=None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        allow_grayscale: bool = False,
        return_exceptions: bool = False,
    ):
        """Probability that a colour photo was photographed in colour: see `realness.score`."""
        return realness.score(self, images, size, batch_size, device, max_pixels, allow_grayscale, return_exceptions)

    def _save_pretrained(self, save_directory: Path) -> None:
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(save_directory / constants.SAFETENSORS_SINGLE_FILE), metadata={"format": "pt"})

    @classmethod
    def _from_pretrained(cls, *, model_id, revision, cache_dir, force_download, local_files_only, token, map_location="cpu", strict=True, **model_kwargs):
        model_kwargs = {**LEGACY_CONFIG, **model_kwargs}  # keys its config.json has (or the caller gives) win
        if os.path.isdir(model_id):
            weights = os.path.join(model_id, constants.SAFETENSORS_SINGLE_FILE)
        else:
            weights = hf_hub_download(
                repo_id=model_id,
                filename=constants.SAFETENSORS_SINGLE_FILE,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                token=token,
                local_files_only=local_files_only,
            )
        state = load_file(weights, device=str(map_location))
        saved_bins = state.get("generator.bins")
        saving = _SAVED_BINS.set(saved_bins.float() if saved_bins is not None and saved_bins.dim() == 2 else None)
        try:  # the saved colour bins, not recomputed (they would be overwritten, and working out the gamut takes a while)
            model = cls(**model_kwargs)
        finally:
            _SAVED_BINS.reset(saving)
        expected = model.state_dict()
        state = {k: v.to(expected[k].dtype) if k in expected else v for k, v in state.items()}
        state.setdefault("realness_cues", realness.default_cue_readout())  # saved before the cues: none read
        problem = _state_mismatch(state, expected) if strict else None
        if problem:
            raise RuntimeError(f"its weights do not fit its config.json ({problem}): saved by another version of colorgan-hub, or edited")
        model.load_state_dict(state, strict=strict)
        return model.eval()


def _state_mismatch(state: dict, expected: dict) -> str | None:
    """What keeps `state` from loading strictly into a model whose state is `expected`, in a few
    words with one example of each kind, or None."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    parts = [f"{len(keys)} {what}, e.g. {keys[0]}" for keys, what in ((missing, "missing"), (unexpected, "unexpected"), (reshaped, "of another shape")) if keys]
    return "; ".join(parts) or None


class ModelLoadError(ValueError):
    """A model that cannot be loaded, with the spec and the reason in one line."""


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint answers a TCP connection (huggingface_hub itself retries for ~25 s)."""
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout=timeout):
            return True
    except OSError:
        return False


def load_model(spec: str) -> ColorGAN:
    """`ColorGAN.from_pretrained(spec)` with one clear error line for what users get wrong: a folder
    that does not exist or is no model, a Hub id that does not exist, no network (then the local
    cache is tried at once instead of after the Hub client's retries). Raises ModelLoadError."""
    try:
        path = Path(spec).expanduser()
    except RuntimeError:  # "~someone/..." for a user this machine does not know
        path = Path(spec)
    if path.is_dir():
        if not (path / "config.json").is_file() or not (path / constants.SAFETENSORS_SINGLE_FILE).is_file():
            raise ModelLoadError(f"cannot load model {spec!r}: the folder has no config.json and model.safetensors (a save_pretrained folder)")
        local_only = True
    elif path.exists():
        raise ModelLoadError(f"cannot load model {spec!r}: it is a file; give its save_pretrained folder or a Hub id")
    else:
        try:
            validate_repo_id(spec)
        except errors.HFValidationError:
            raise ModelLoadError(f"cannot load model {spec!r}: no such folder (and not a Hub id such as user/model)") from None
        local_only = constants.HF_HUB_OFFLINE or not _hub_reachable()
    try:
        return ColorGAN.from_pretrained(str(path) if path.is_dir() else spec, local_files_only=local_only)
    except errors.RepositoryNotFoundError:
        raise ModelLoadError(f"cannot load model {spec!r}: no such model on the Hub (or it is private: log in with `hf auth login`)") from None
    except errors.LocalEntryNotFoundError:
        folder = "" if "/" in spec else "no such folder, and as a Hub id: "
        raise ModelLoadError(f"cannot load model {spec!r}: {folder}the Hub cannot be reached (offline?) and the model is not in the local cache") from None
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as err:  # wrong files, wrong shapes, bad config
        raise ModelLoadError(f"cannot load model {spec!r}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}") from None
