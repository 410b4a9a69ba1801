"""The Gradio demo (the Hugging Face Space): before/after colorization and the real-vs-colorized score.

    colorgan demo                 # or: python space/app.py
    COLORGAN_MODELS="user/colorgan-large,./runs/x/model" colorgan demo   # more models to pick from

Handlers only call the package's `colorize`, `suggest_colours`, `colorize_video` and `realness`;
models are loaded once and cached. Hints: a click on the hint canvas places one (its colour the
likeliest the model suggests there), a suggested swatch or the colour picker recolours the last
one, Undo and Clear take them back; the colorization follows each change. The endpoints
(`/colorize`, `/colorize_video`, `/score`) are an API for `gradio_client`; `/colorize` takes the
hints as a JSON list of {"x", "y", "colour"} and a reference photo.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from functools import lru_cache
from pathlib import Path

import gradio as gr
from PIL import Image, ImageDraw

from . import DEFAULT_MODEL, fullres
from .guidance import NO_GUIDANCE
from .image_io import ImageError, NoColourError, load_image
from .model import ColorGAN, ModelLoadError, load_model
from .options import MAX_VARIATIONS, MULTISCALE_FACTOR, STABILITY
from .video import VideoError

BUNDLED = "bundled default"
MAX_FILE_SIZE = "100mb"  # uploads above this are refused by Gradio before any decoding (a minute of HD video fits)
MAX_PIXELS = 50_000_000  # the package's decompression-bomb guard
CONCURRENCY = int(os.environ.get("COLORGAN_DEMO_CONCURRENCY", 2))  # requests computed at once (benchmarks/bench_serving.py); the rest wait in the queue
MAX_VIDEO_SECONDS = 60  # the Space colorizes at most the first minute of a clip
MAX_VIDEO_PIXELS = 1920 * 1080  # and frames up to Full HD
UPSCALE_CHOICES = {"off": 1, "2x": 2, "4x": 4}
EXAMPLES = ("astronaut", "chelsea", "coffee", "rocket")  # photos scikit-image already ships
CANVAS_SIDE = 1024  # the hint canvas shows the photo at most this large (hint positions are in the photo's pixels)
SUGGESTIONS = 6


def canvas_scale(photo: Image.Image) -> float:
    """Photo pixels per canvas pixel."""
    return max(1.0, max(photo.size) / CANVAS_SIDE)


def draw_hints(photo: Image.Image | None, hints: list[dict]) -> Image.Image | None:
    """The hint canvas: the photo in gray, at most CANVAS_SIDE px, each hint a dot of its colour
    in a white and black ring."""
    if photo is None:
        return None
    scale = canvas_scale(photo)
    canvas = photo.convert("L").convert("RGB")
    if scale > 1:
        canvas = canvas.resize((round(photo.width / scale), round(photo.height / scale)), Image.Resampling.BOX)
    pen = ImageDraw.Draw(canvas)
    radius = max(4, round(max(canvas.size) / 90))
    for hint in hints:
        x, y = hint["x"] / scale, hint["y"] / scale
        pen.ellipse((x - radius - 2, y - radius - 2, x + radius + 2, y + radius + 2), fill="black")
        pen.ellipse((x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1), fill="white")
        pen.ellipse((x - radius + 1, y - radius + 1, x + radius - 1, y + radius - 1), fill=hint["colour"])
    return canvas


def swatches(suggestions) -> list[tuple[Image.Image, str]]:
    """Suggested colours as small solid images with their hex code and share, for a gallery."""
    return [(Image.new("RGB", (48, 48), s.colour), f"{s.colour} ({s.probability:.0%})") for s in suggestions]


def model_choices() -> dict[str, str]:
    """Display name -> Hub id or folder: the bundled model (if present) and COLORGAN_MODELS."""
    choices = {}
    if Path(DEFAULT_MODEL, "config.json").exists():
        choices[BUNDLED] = DEFAULT_MODEL
    for spec in filter(None, (s.strip() for s in os.environ.get("COLORGAN_MODELS", "").split(","))):
        choices[spec] = spec
    return choices


_LOAD_LOCK = threading.Lock()


def load(spec: str) -> ColorGAN:
    """The model of a menu entry, loaded once, also when the first requests arrive together (a
    ModelLoadError says in one line why it cannot be)."""
    with _LOAD_LOCK:
        return _load(spec)


@lru_cache(maxsize=4)
def _load(spec: str) -> ColorGAN:
    return load_model(spec)


class RequestFolders:
    """A folder per request for the files handed to Gradio, all inside one temporary folder of the
    app that is removed when the process exits. Gradio copies returned files into its own cache,
    so a request's folder is removed at a later request once it is older than `max_age` seconds."""

    def __init__(self, max_age: float = 3600.0):
        self.root = tempfile.TemporaryDirectory(prefix="colorgan-demo-")
        self.max_age = max_age

    def new(self) -> Path:
        now = time.time()
        for old in Path(self.root.name).iterdir():
            if now - old.stat().st_mtime > self.max_age:
                shutil.rmtree(old, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=self.root.name))


class PhotoInput(gr.Image):
    """gr.Image whose uploads are opened by the package's own loader, so a bad file gets our
    one-line reason (empty, truncated, not an image, over the pixel limit) as a gr.Error instead
    of Gradio's bare "Error" from decoding it first. Same front-end as gr.Image (a template)."""

    is_template = True

    def preprocess(self, payload):
        if payload is None or payload.path is None or (payload.url or "").startswith("data:"):
            return super().preprocess(payload)  # nothing, or pasted data: Gradio decodes it
        name = payload.orig_name or Path(payload.path).name
        try:
            img = load_image(payload.path, max_pixels=MAX_PIXELS)
        except ImageError as err:
            raise gr.Error(f"{name}: {err.reason}", print_exception=False) from None
        if getattr(img, "n_frames", 1) > 1:
            gr.Warning(f"{name}: {img.n_frames} frames; the first frame only is used")
        return img


def _probabilities(p: float) -> dict[str, float]:
    return {"photographed in colour": p, "colorized by machine": 1.0 - p}


def example_files() -> list[str]:
    """Desaturated copies of scikit-image's sample photos, written to the temp folder (never the
    working directory); [] if scikit-image is not installed."""
    try:
        from skimage import data
    except ImportError:
        return []
    folder = Path(tempfile.gettempdir(), "colorgan-examples")
    folder.mkdir(exist_ok=True)
    paths = []
    for name in EXAMPLES:
        path = folder / f"{name}.png"
        if not path.exists():
            Image.fromarray(getattr(data, name)()).convert("L").save(path)
        paths.append(str(path))
    return paths


def build_demo(models: dict[str, str] | None = None) -> gr.Blocks:
    """The Blocks app. Raises RuntimeError when there is no trained model to serve."""
    models = models if models is not None else model_choices()
    if not models:
        raise RuntimeError(
            "no trained model to serve: this install has no bundled default model and COLORGAN_MODELS is empty. "
            "Set COLORGAN_MODELS to a Hub id or a save_pretrained folder."
        )
    first = next(iter(models))
    folders = RequestFolders()
    try:
        first_model = load(models[first])
    except ModelLoadError as err:
        raise RuntimeError(str(err)) from None
    default_size = min(max(first_model.image_size, 128), 768)  # inside the slider's range
    default_temperature = min(max(first_model.temperature, 0.1), 1.0)
    default_vividness = first_model.vividness
    fullres.warm_up()  # the first request should not wait for numba's compiler

    def model_for(name: str) -> ColorGAN:
        try:
            return load(models.get(name, models[first]))
        except ModelLoadError as err:
            raise gr.Error(str(err), print_exception=False) from None

    def colorize(
        image, resolution, model_name, vividness=None, temperature=None, upscale="off", variations=1, seed=0, multiscale=True, hints=None, reference=None
    ):
        if image is None:
            raise gr.Error("Upload or paste a photo first.")
        model = model_for(model_name)
        variations, scale = int(variations or 1), UPSCALE_CHOICES.get(upscale, 1)
        multiscale = bool(multiscale) and model.head == "classification"
        start = time.perf_counter()
        try:
            colored = model.colorize(
                image,
                size=int(resolution),
                max_pixels=MAX_PIXELS,
                upscale=scale,
                vividness=None if vividness is None else float(vividness),
                temperature=float(temperature) if temperature else None,
                variations=variations if variations > 1 else None,
                seed=int(seed or 0),
                multiscale=multiscale,
                hints=[(h["x"], h["y"], h["colour"]) for h in hints or []] or None,
                reference=reference,
            )
        except (ImageError, ValueError) as err:
            raise gr.Error(getattr(err, "reason", str(err)), print_exception=False) from None
        choices = colored if variations > 1 else [colored]
        p = model.realness(choices[0], allow_grayscale=True)
        seconds = time.perf_counter() - start
        # Files of our own, not PIL images: Gradio re-writes the cache file of an image it is handed
        # (named by content) on every request, so identical concurrent requests raced a reader.
        folder = folders.new()
        gray = folder / "grayscale.png"
        choices[0].convert("L").save(gray, compress_level=1)  # lossless either way; level 1 is several times faster on a large photo
        outs = [folder / (f"colorized-{n}.png" if variations > 1 else "colorized.png") for n in range(1, len(choices) + 1)]
        for img, out in zip(choices, outs):
            img.save(out, compress_level=1)
        size = f"{choices[0].width}x{choices[0].height}" + (f" (upscaled x{scale})" if scale > 1 else "")
        what = f"{variations} variations" if variations > 1 else "colorized"
        scales = f" and {round(int(resolution) * MULTISCALE_FACTOR)} (multi-scale)" if multiscale else ""
        guided = f" with {len(hints)} hint(s)" if hints else ""
        guided += " and the reference's palette" if reference is not None else ""
        note = f"{size} {what}{guided} at working size {int(resolution)}{scales} in {seconds:.2f} s"
        gallery = [(str(out), f"variation {n}") for n, out in enumerate(outs, 1)] if variations > 1 else []
        return (str(gray), str(outs[0])), str(outs[0]), _probabilities(p), note, gallery

    def recolorize(image, *rest):
        """`colorize` after a change of the hints or the reference; nothing before there is a photo."""
        return colorize(image, *rest) if image is not None else [gr.skip()] * 5

    def new_photo(image):
        """A new photo: its canvas, no hints."""
        return draw_hints(image, []), [], [], gr.Gallery(value=[])

    def place_hint(image, hints, model_name, reference, evt: gr.SelectData):
        """A click on the canvas: a hint there in the likeliest colour the model suggests, the
        suggestions offered as swatches."""
        if image is None:
            raise gr.Error("Upload or paste a photo first.")
        model = model_for(model_name)
        if getattr(model, "guidance", None) is None:
            raise gr.Error(NO_GUIDANCE, print_exception=False)
        scale = canvas_scale(image)
        x, y = (evt.index[0] + 0.5) * scale, (evt.index[1] + 0.5) * scale
        try:
            suggested = model.suggest_colours(
                image, x, y, k=SUGGESTIONS, hints=[(h["x"], h["y"], h["colour"]) for h in hints] or None, reference=reference, max_pixels=MAX_PIXELS
            )
        except (ImageError, ValueError) as err:
            raise gr.Error(getattr(err, "reason", str(err)), print_exception=False) from None
        hints = [*hints, {"x": round(x, 1), "y": round(y, 1), "colour": suggested[0].colour}]
        return draw_hints(image, hints), hints, [s.colour for s in suggested], swatches(suggested), suggested[0].colour

    def recolour_last(colour, image, *rest):
        """The colour picker changed (by hand, or by a swatch): the last hint takes that colour and
        the colorization follows. Nothing to do when it is the hint's colour already (a new hint
        sets the picker to its own colour)."""
        hints = rest[-2]
        if image is None or not hints or not colour or hints[-1]["colour"].lower() == colour.lower():
            return [gr.skip()] * 7
        hints = [*hints[:-1], {**hints[-1], "colour": colour}]
        return (draw_hints(image, hints), hints, *colorize(image, *rest[:-2], hints, rest[-1]))

    def pick_swatch(suggested, evt: gr.SelectData):
        """A suggested swatch goes to the colour picker (whose change recolours the last hint)."""
        return suggested[evt.index]

    def undo(image, hints):
        hints = hints[:-1]
        return draw_hints(image, hints), hints

    def pick(slider_value, evt: gr.SelectData):
        """A variation picked in the gallery goes to the before/after slider and the download."""
        chosen = evt.value["image"]["path"]
        return (slider_value[0], chosen), chosen

    def colorize_clip(video, resolution, model_name, vividness=None, stability=STABILITY, progress=gr.Progress()):
        if not video:
            raise gr.Error("Upload a video first.")
        model = model_for(model_name)
        source = Path(video)
        out = folders.new() / f"{source.stem}-colorized.mp4"  # MP4 / H.264: plays in browsers

        def report(done, expected):
            progress((done, expected) if expected else None, desc="colorizing", unit="frames")

        try:
            result = model.colorize_video(
                source,
                out,
                size=int(resolution),
                stability=float(stability),
                max_seconds=MAX_VIDEO_SECONDS,
                max_pixels=MAX_VIDEO_PIXELS,
                vividness=None if vividness is None else float(vividness),
                progress=report,
            )
        except VideoError as err:
            raise gr.Error(f"{source.name}: {err.reason}", print_exception=False) from None
        note = f"{result.summary()}; {result.seconds:.1f} s ({result.frames_per_second:.0f} frames/s)"
        return str(out), "  \n".join([note, *result.notes])

    def score(image, model_name):
        if image is None:
            raise gr.Error("Upload a colour photo first.")
        model = model_for(model_name)
        try:
            return _probabilities(model.realness(image, max_pixels=MAX_PIXELS))
        except NoColourError as err:  # an answer, not an error: a black-and-white or toned print
            return err.reason
        except ImageError as err:
            raise gr.Error(err.reason) from None

    with gr.Blocks(title="ColorGAN Hub", delete_cache=(3600, 3600)) as demo:
        gr.Markdown("# ColorGAN Hub\nAutomatic colorization of grayscale photos and film clips with a conditional GAN, at full resolution.")
        model_name = gr.Dropdown(list(models), value=first, label="Model")
        with gr.Tab("Colorize"):
            with gr.Row():
                with gr.Column():
                    photo = PhotoInput(type="pil", image_mode=None, sources=["upload", "clipboard"], label="Photo (grayscale or colour)", height=300)
                    button = gr.Button("Colorize", variant="primary", elem_id="colorize-button")
                    with gr.Accordion("Hints: tell it the colour", open=False, elem_id="hints-panel"):
                        gr.Markdown(
                            "Click on the photo where you know the colour: the likeliest colours there are offered below; "
                            "the last hint takes the one you pick. Its colour spreads over the region it belongs to."
                        )
                        canvas = gr.Image(type="pil", interactive=False, label="Click to place a hint", elem_id="hint-canvas", height=300, buttons=[])
                        swatch_gallery = gr.Gallery(
                            label="Suggested colours: click one", columns=SUGGESTIONS, height=90, allow_preview=False, elem_id="hint-swatches"
                        )
                        with gr.Row():
                            picker = gr.ColorPicker(label="Or any colour", elem_id="hint-colour")
                            undo_button = gr.Button("Undo", elem_id="hint-undo")
                            clear_button = gr.Button("Clear hints", elem_id="hint-clear")
                        hints = gr.JSON(value=[], label="Hints (x, y in the photo's pixels)", elem_id="hint-list", max_height=160)
                        reference = PhotoInput(
                            type="pil",
                            image_mode=None,
                            sources=["upload", "clipboard"],
                            height=160,
                            label="Reference photo (optional): its palette",
                            elem_id="reference",
                        )
                    with gr.Accordion("Options", open=False):
                        resolution = gr.Slider(128, 768, value=default_size, step=32, label="Working resolution (long side, px)")
                        vividness = gr.Slider(
                            0.0,
                            1.0,
                            value=default_vividness,
                            step=0.05,
                            label="Vividness: 0 muted and safe, 1 bold and risky",
                            info="how far the colours may stray from the safest guess (classification models)",
                        )
                        upscale = gr.Radio(
                            list(UPSCALE_CHOICES), value="off", label="Upscale", info="bring a small scan to 2x or 4x its width and height before colorizing"
                        )
                        multiscale = gr.Checkbox(
                            True,
                            label="Multi-scale",
                            info="the network also sees the photo at 1.5x the working size: more faithful colour (off: about 3x faster)",
                        )
                        with gr.Row():
                            variations = gr.Slider(
                                1, MAX_VARIATIONS, value=1, step=1, label="Variations", info="more than 1: different plausible colorizations to pick from"
                            )
                            seed = gr.Number(0, precision=0, minimum=0, label="Seed", info="the same seed gives the same variations")
                        temperature = gr.Slider(
                            0.1,
                            1.0,
                            value=default_temperature,
                            step=0.02,
                            label="Temperature",
                            info="annealing of the predicted colour distribution: 1 its mean, lower towards its likeliest colour",
                        )
                with gr.Column():
                    slider = gr.ImageSlider(type="filepath", format="png", label="Before / after", elem_id="before-after", interactive=False)
                    gallery = gr.Gallery(label="Variations: click one to compare it", columns=6, height=200, visible=False, elem_id="variations")
                    probs = gr.Label(label="Real or colorized? (the result)", elem_id="result-label")
                    timing = gr.Markdown(label="Timing", elem_id="timing")
                    download = gr.File(label="Download PNG")
            gr.Examples(example_files(), inputs=photo)
            suggested = gr.State([])
            colorize_inputs = [photo, resolution, model_name, vividness, temperature, upscale, variations, seed, multiscale, hints, reference]
            colorize_outputs = [slider, download, probs, timing, gallery]
            button.click(colorize, colorize_inputs, colorize_outputs, api_name="colorize", concurrency_limit=CONCURRENCY)
            photo.change(new_photo, photo, [canvas, hints, suggested, swatch_gallery], api_name=False)
            # each change of the hints or the reference: the colorization follows (once there is a photo)
            follow = dict(fn=recolorize, inputs=colorize_inputs, outputs=colorize_outputs, api_name=False, concurrency_limit=CONCURRENCY)
            canvas.select(
                place_hint,
                [photo, hints, model_name, reference],
                [canvas, hints, suggested, swatch_gallery, picker],
                api_name=False,
                concurrency_limit=CONCURRENCY,
            ).success(**follow)
            swatch_gallery.select(pick_swatch, suggested, picker, api_name=False)
            picker.change(recolour_last, [picker, *colorize_inputs], [canvas, hints, *colorize_outputs], api_name=False, concurrency_limit=CONCURRENCY)
            undo_button.click(undo, [photo, hints], [canvas, hints], api_name=False).success(**follow)
            clear_button.click(lambda image: (draw_hints(image, []), []), photo, [canvas, hints], api_name=False).success(**follow)
            reference.change(**follow)
            gallery.select(pick, slider, [slider, download], api_name=False)
            variations.change(lambda n: gr.Gallery(visible=int(n) > 1), variations, gallery, api_name=False)
        with gr.Tab("Video"):
            gr.Markdown(
                f"Colorize a black-and-white film clip (mp4, mov, mkv, avi, webm). Colours are carried along the motion so they "
                f"do not flicker, and reset at scene cuts; the sound is copied. This demo takes the first {MAX_VIDEO_SECONDS} s "
                f"of a clip, frames up to 1920x1080; the `colorgan` command line has no such limits."
            )
            with gr.Row():
                with gr.Column():
                    clip = gr.Video(sources=["upload"], label="Video", elem_id="video-input")
                    clip_resolution = gr.Slider(128, 512, value=default_size, step=32, label="Working resolution (long side, px)")
                    clip_vividness = gr.Slider(0.0, 1.0, value=default_vividness, step=0.05, label="Vividness: 0 muted and safe, 1 bold and risky")
                    stability = gr.Slider(
                        0.0,
                        0.95,
                        value=STABILITY,
                        step=0.05,
                        label="Stability: 0 every frame on its own, higher steadier colour",
                        info="share of the previous frame's colour carried along the motion",
                    )
                    clip_button = gr.Button("Colorize video", variant="primary", elem_id="colorize-video-button")
                with gr.Column():
                    clip_out = gr.Video(label="Colorized", elem_id="video-output")
                    clip_note = gr.Markdown(label="Video note", elem_id="video-note")
            clip_button.click(
                colorize_clip,
                [clip, clip_resolution, model_name, clip_vividness, stability],
                [clip_out, clip_note],
                api_name="colorize_video",
                concurrency_limit=1,
            )
        with gr.Tab("Real or colorized?"):
            gr.Markdown(
                "The probability that a colour photo was **photographed in colour** rather than colorized from black and white. "
                "The detector was trained against a family of colorizations: this model at many settings, other generators, "
                "toned prints, hand-tinting and colour transfer; a colorizer unlike all of them may pass, and it does not judge "
                "edits or generated images. Black-and-white and toned monochrome prints get their own answer."
            )
            with gr.Row():
                colour_photo = PhotoInput(type="pil", image_mode=None, sources=["upload", "clipboard"], label="Colour photo")
                verdict = gr.Label(label="Real or colorized?")
            score_button = gr.Button("Score", variant="primary", elem_id="score-button")
            score_button.click(score, [colour_photo, model_name], verdict, api_name="score", concurrency_limit=CONCURRENCY)
    demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
    return demo


def main(host: str = "127.0.0.1", port: int = 7860) -> None:
    try:
        demo = build_demo()
    except RuntimeError as err:
        raise SystemExit(f"error: {err}") from None
    demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE)
