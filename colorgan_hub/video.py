"""Video: colorize a clip in real time on a CPU, with colours that hold steady from frame to frame.

    result = colorize_video(model, "clip.mp4", "out/clip.mp4")      # a file: same size, rate, audio
    for rgb in VideoColorizer(model).frames(gray_frames): ...        # any iterator of frames

Each frame takes the photo path (working-size L -> generator -> ab, recombined with the frame's
own full-resolution lightness) with one step added between the generator and the recombination:
temporal fusion at the working size. Frame-by-frame predictions are independent guesses, so a
wall can turn from blue to gray and back. Here the previous frame's fused ab is carried to the
current frame along the optical flow (OpenCV's DIS at the working size, well under a millisecond)
and blended with the new prediction: weight `stability` where the motion-compensated lightness
matches, falling to 0 where it does not (occlusions, new content at the borders). A scene cut
(most of the frame without a match) resets the memory, so one shot's colours never bleed into
the next.

Files go through PyAV (FFmpeg inside its wheels; no system ffmpeg): the colorized frames are
encoded with H.264 (VP9 for .webm) at the source's size and timestamps, audio packets are copied
as they are. Frames stream through a few at a time, so memory does not grow with the length, and
the output is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from .color import gray_to_l_numpy
from .fullres import recombine
from .guidance import NO_GUIDANCE, Guidance, HintError, match_chroma, read_reference
from .image_io import InputError, file_problem
from .options import STABILITY, check_options
from .pipeline import inference, padded_shape, pick_device, predict_ab, resize, working_shape

KEPT_CONTAINERS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}  # written as they came; others become .mkv
MAX_VIDEO_PIXELS = 8192 * 4320  # per frame: 8K
MIN_VIDEO_SIDE = 16
_MATCH_SIGMA = 10.0  # gray levels (0-255) of motion-compensated residual at which the weight falls to 1/e
_CUT_RESIDUAL = 20.0  # a pixel whose residual exceeds this has no match in the previous frame
_CUT_FRACTION = 0.3  # a frame where more than this share of pixels has no match starts a new shot


class VideoError(InputError):
    """A video that cannot be colorized, with the file and the reason in the message."""


# ---------------------------------------------------------------------------------------------
# Frames: temporal fusion and the colorizer.


class TemporalFusion:
    """Carries colour from frame to frame along the optical flow; resets at scene cuts.

    Call it on each frame in order with the frame's working-size gray (h, w) uint8 and the
    generator's ab (h, w, 2) float32 (Lab units); it returns (fused ab, True if a new shot
    starts here). `stability` 0 returns every prediction untouched (independent frames).
    """

    def __init__(self, stability: float = STABILITY):
        check_options(stability=stability)
        self.stability = stability
        self._flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self._previous = None  # (gray, fused ab) of the last frame

    def reset(self) -> None:
        self._previous = None

    def __call__(self, gray: np.ndarray, ab: np.ndarray) -> tuple[np.ndarray, bool]:
        gray, ab = np.ascontiguousarray(gray, dtype=np.uint8), np.ascontiguousarray(ab, dtype=np.float32)
        previous, self._previous = self._previous, None
        if previous is None or previous[0].shape != gray.shape:
            self._previous = (gray, ab)
            return ab, True
        previous_gray, previous_ab = previous
        h, w = gray.shape
        flow = self._flow.calc(gray, previous_gray, None)  # (h, w, 2): where each pixel was in the previous frame
        map_x = flow[..., 0] + np.arange(w, dtype=np.float32)[None]
        map_y = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
        inside = (map_x >= -0.5) & (map_x <= w - 0.5) & (map_y >= -0.5) & (map_y <= h - 0.5)
        warped_gray = cv2.remap(previous_gray, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        residual = cv2.blur(cv2.absdiff(gray, warped_gray).astype(np.float32), (3, 3))
        unmatched = float(np.mean(~inside | (residual > _CUT_RESIDUAL)))
        if unmatched > _CUT_FRACTION:  # a new shot: nothing to carry over
            self._previous = (gray, ab)
            return ab, True
        weight = self.stability * np.exp(-np.square(residual / _MATCH_SIGMA)) * inside  # (h, w)
        warped_ab = cv2.remap(previous_ab, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fused = ab + weight[..., None] * (warped_ab - ab)
        self._previous = (gray, fused)
        return fused, False


def _as_gray(frame, index: int) -> np.ndarray:
    """A frame (H, W) uint8 gray, (H, W, 3) uint8 RGB, or a PIL image -> (H, W) uint8 gray."""
    if isinstance(frame, Image.Image):
        frame = np.asarray(frame.convert("L"))
    array = np.asarray(frame)
    if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3)):
        raise VideoError(f"frame {index}", f"expected (H, W) or (H, W, 3) uint8, got {array.shape} {array.dtype}")
    if array.ndim == 3:
        array = array[..., 0] if array.shape[2] == 1 else cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2GRAY)
    if min(array.shape) < MIN_VIDEO_SIDE:
        raise VideoError(f"frame {index}", f"{array.shape[1]}x{array.shape[0]}: frames need at least {MIN_VIDEO_SIDE} px on a side")
    return np.ascontiguousarray(array)


class VideoColorizer:
    """Colorizes a stream of frames in order: batches for the generator, temporal fusion,
    full-resolution recombination. `cuts` lists the frame indices where a new shot began
    (the first frame is not counted); `frames_done` counts the frames given out.
    """

    def __init__(
        self,
        model,
        size: int | None = None,
        stability: float = STABILITY,
        vividness: float | None = None,
        temperature: float | None = None,
        batch_size: int = 4,
        device=None,
        reference=None,
    ):
        check_options(temperature=temperature, vividness=vividness, size=size, stability=stability)
        self.reference = None  # a colour photo whose palette and saturation every frame takes (a model with guidance inputs)
        if reference is not None:
            if getattr(model, "guidance", None) is None:
                raise HintError(NO_GUIDANCE)
            self.reference = read_reference(reference, model.generator.bins)
        self.model, self.size = model, size or model.image_size
        self.vividness, self.temperature, self.batch_size = vividness, temperature, max(1, batch_size)
        self.device = torch.device(device) if device is not None else pick_device()
        self.fusion = TemporalFusion(stability)
        self.cuts: list[int] = []
        self.frames_done = 0

    def frames(self, frames: Iterable) -> Iterator[np.ndarray]:
        """Colorized frames, (H, W, 3) uint8 RGB, one per input frame, in order (a few frames of
        delay: the generator runs on `batch_size` frames at a time)."""
        batch = []
        for frame in frames:
            gray = _as_gray(frame, self.frames_done + len(batch))
            if batch and gray.shape != batch[0].shape:  # a batch holds one frame size
                yield from self._colorize(batch)
                batch = []
            batch.append(gray)
            if len(batch) == self.batch_size:
                yield from self._colorize(batch)
                batch = []
        if batch:
            yield from self._colorize(batch)

    def _colorize(self, grays: list[np.ndarray]) -> Iterator[np.ndarray]:
        h, w = working_shape(*grays[0].shape, self.size)
        smalls = [resize(gray, (h, w)) for gray in grays]
        with inference(self.model, self.device):
            guidance = None if self.reference is None else Guidance(torch.zeros(len(smalls), 0, 5), self.reference.palette.expand(len(smalls), -1))
            ab = predict_ab(
                self.model,
                [gray_to_l_numpy(small) for small in smalls],
                padded_shape((h, w), self.model.generator.multiple),
                self.device,
                self.temperature,
                self.vividness,
                guidance=guidance,
            )
        for gray, small, frame_ab in zip(grays, smalls, ab):
            frame_ab = np.ascontiguousarray(frame_ab[:h, :w])
            if self.reference is not None:
                frame_ab = match_chroma(frame_ab, self.reference.chroma)
            fused, new_shot = self.fusion(small, frame_ab)
            if new_shot and self.frames_done:
                self.cuts.append(self.frames_done)
            self.frames_done += 1
            yield recombine(gray, fused)


# ---------------------------------------------------------------------------------------------
# Files.


def video_output_path(input_path: Path, output_dir: Path) -> Path:
    """Where a colorized video goes: same name and container (Matroska for containers that do not
    take H.264, such as .mpg)."""
    suffix = input_path.suffix if input_path.suffix.lower() in KEPT_CONTAINERS else ".mkv"
    return Path(output_dir) / (input_path.stem + suffix)


@dataclass
class VideoResult:
    """What `colorize_video` wrote."""

    path: Path
    frames: int
    width: int
    height: int
    frame_rate: float
    seconds: float  # wall time of the whole job
    cuts: list[int] = field(default_factory=list)
    audio_streams: int = 0  # audio streams copied
    notes: list[str] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def summary(self) -> str:
        """'120 frames 640x360 at 25 fps, 1 audio stream(s) copied, 1 scene cut(s)' (the CLI's and the demo's line)."""
        audio = f", {self.audio_streams} audio stream(s) copied" if self.audio_streams else ", no audio"
        cuts = f", {len(self.cuts)} scene cut(s)" if self.cuts else ""
        return f"{self.frames} frames {self.width}x{self.height} at {self.frame_rate:g} fps{audio}{cuts}"


def _open_input(path: Path, max_pixels: int):
    """(container, video stream, audio streams), or VideoError with the reason."""
    import av

    source = str(path)
    problem = file_problem(path, "a video")
    if problem:
        raise VideoError(source, problem)
    try:
        container = av.open(source)
    except av.error.EOFError:
        raise VideoError(source, "ends before any video data (an empty or cut-off recording)") from None
    except av.error.FFmpegError as err:
        raise VideoError(source, f"not a video FFmpeg can read ({err.strerror or err})") from None
    try:
        if container.format.name == "tty":  # FFmpeg's demuxer of last resort reads any text as ANSI art
            raise VideoError(source, "a text file, not a video")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            if kinds == ["audio"]:
                raise VideoError(source, f"audio only ({', '.join(s.codec_context.name for s in container.streams.audio)}): no video stream")
            raise VideoError(source, f"no video stream (it holds: {', '.join(kinds)})" if kinds else "no streams at all: nothing to colorize")
        video = container.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        if width < MIN_VIDEO_SIDE or height < MIN_VIDEO_SIDE:
            raise VideoError(source, f"{width}x{height}: frames need at least {MIN_VIDEO_SIDE} px on a side")
        if width * height > max_pixels:
            raise VideoError(source, f"{width}x{height}: frames of {width * height / 1e6:.0f} megapixels exceed the limit of {max_pixels / 1e6:.0f}")
        video.thread_type = "AUTO"  # frame and slice threads in the decoder
        return container, video, list(container.streams.audio)
    except BaseException:
        container.close()
        raise


def _orientation(matrix) -> tuple[int, bool]:
    """(quarter turns counter-clockwise, mirrored first) that show a frame as a display matrix
    says: FFmpeg's 3x3 matrix (16.16 fixed point, row vector times matrix), of which the top-left
    2x2 maps a pixel (x, y) to (a x + c y, b x + d y). Each of the eight rotations and mirrorings
    is tried on a small grid of labels and the one that lands them where the matrix does is kept."""
    a, b, c, d = (round(matrix[i] / 65536) for i in (0, 1, 3, 4))
    labels = np.arange(6).reshape(2, 3)
    ys, xs = np.mgrid[0:2, 0:3]
    x2, y2 = a * xs + c * ys, b * xs + d * ys
    expected = np.empty((y2.max() - y2.min() + 1, x2.max() - x2.min() + 1), int)
    expected[y2 - y2.min(), x2 - x2.min()] = labels
    for mirrored in (False, True):
        for turns in range(4):
            candidate = np.rot90(labels[:, ::-1] if mirrored else labels, turns)
            if candidate.shape == expected.shape and (candidate == expected).all():
                return turns, mirrored
    return 0, False  # not a rotation or mirroring (a shear, a scale): shown as stored


def _display_orientation(path: Path) -> tuple[int, bool]:
    """(quarter turns counter-clockwise, mirrored first) that show the video as players do: a
    phone's portrait clip is stored sideways, a front camera's may be mirrored, with a display
    matrix that players apply. Read from the first frame's side data; (0, False) when there is
    none or the frame cannot be decoded (the decoding proper then reports the problem)."""
    import av

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                for data in frame.side_data:
                    if data.type.name == "DISPLAYMATRIX":
                        return _orientation(np.frombuffer(bytes(data), dtype=np.int32))
                return 0, False
    except (av.error.FFmpegError, ValueError, TypeError):
        pass
    return 0, False


def _gray_frame(frame, width: int, height: int) -> np.ndarray:
    """A decoded frame -> (height, width) uint8 full-range gray (luma), scaled if the stream
    changed size. Limited-range YUV (the usual, also when untagged) is expanded to 0-255."""
    from av.video.reformatter import ColorRange

    name = frame.format.name
    limited = name.startswith("yuv") and not name.startswith("yuvj") and frame.color_range != ColorRange.JPEG
    gray = frame.reformat(
        width=width, height=height, format="gray", src_color_range=ColorRange.MPEG if limited else ColorRange.JPEG, dst_color_range=ColorRange.JPEG
    )
    return gray.to_ndarray()


def _add_video_stream(output, video, suffix: str, crf: int, sideways: bool = False):
    """The output's video stream: H.264 (VP9 for WebM) at the input's size (upright: sides
    swapped when the input is stored `sideways`), rate and time base, tagged BT.709 limited
    range (what the RGB -> YUV conversion below writes)."""
    from av.video.reformatter import ColorRange, Colorspace

    width, height = video.codec_context.width, video.codec_context.height
    if sideways:
        width, height = height, width
    rate = video.average_rate or video.guessed_rate or 25
    if suffix == ".webm":
        stream = output.add_stream("libvpx-vp9", rate=rate)
        stream.options = {"crf": str(crf + 14), "b": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
    else:
        stream = output.add_stream("libx264", rate=rate)
        stream.options = {"crf": str(crf), "preset": "superfast"}
    odd = width % 2 or height % 2  # 4:2:0 needs even sides: keep the size, use 4:4:4
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv444p" if odd else "yuv420p"
    stream.time_base = video.time_base
    stream.thread_type = "AUTO"
    context = stream.codec_context
    context.color_range, context.colorspace, context.color_primaries, context.color_trc = ColorRange.MPEG, Colorspace.ITU709, 1, 1
    return stream


def _audio_streams(output, audio_streams: list, notes: list[str]) -> dict:
    """Copies of the input's audio streams in the output (by input index); a codec the output
    container cannot hold is left out with a note."""
    copies = {}
    for stream in audio_streams:
        name = stream.codec_context.name
        if name not in output.supported_codecs:
            notes.append(f"audio stream {stream.index} ({name}) cannot go into a {Path(output.name).suffix} file: left out")
            continue
        copies[stream.index] = output.add_stream_from_template(stream)
    return copies


def colorize_video(
    model,
    source,
    destination,
    *,
    size: int | None = None,
    stability: float = STABILITY,
    vividness: float | None = None,
    temperature: float | None = None,
    batch_size: int = 4,
    device=None,
    crf: int = 18,
    max_seconds: float | None = None,
    max_pixels: int = MAX_VIDEO_PIXELS,
    progress: Callable[[int, int | None], None] | None = None,
    reference=None,
) -> VideoResult:
    """Colorize the video file `source` into `destination` (its suffix picks the container:
    .mp4, .mov, .mkv, .avi: H.264; .webm: VP9). Same size, frame rate and timestamps; audio
    streams copied untouched. `max_seconds` stops after that much of the clip (audio too).
    `progress(frames_done, frames_expected or None)` is called after each frame. `reference`: a
    colour photo whose palette every frame takes (a model with guidance inputs).

    A clip stored sideways with a display rotation (phones' portrait clips) is colorized and
    written upright, as players show it.

    Raises VideoError (file and reason) for a file that cannot be read or holds no usable video;
    nothing is then left under `destination`.
    """
    import av

    source, destination = Path(source), Path(destination)
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
    started = time.perf_counter()
    container, video, audio_in = _open_input(source, max_pixels)
    turns, mirrored = _display_orientation(source)
    temporary = destination.with_name(f".{destination.stem}.partial{destination.suffix}")
    output, notes, frames_seen = None, [], 0
    try:
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            output = av.open(str(temporary), "w")
            out_video = _add_video_stream(output, video, destination.suffix.lower(), crf, sideways=turns % 2 == 1)
            audio_out = _audio_streams(output, audio_in, notes)
            output.start_encoding()
        except (OSError, av.error.FFmpegError, ValueError) as err:
            raise VideoError(str(destination), f"cannot write this file ({getattr(err, 'strerror', None) or err})") from None
        width, height = out_video.width, out_video.height
        coded = video.codec_context.width, video.codec_context.height
        if turns or mirrored:
            how = ", then ".join((["mirrored"] if mirrored else []) + ([f"turned {turns * 90} degrees counter-clockwise"] if turns else []))
            notes.append(f"turned upright: players show this file {how} (a display matrix, as phones write); the colorized video is written as they show it")
        colorizer = VideoColorizer(model, size, stability, vividness, temperature, batch_size, device, reference)
        seconds = float(video.duration * video.time_base) if video.duration else container.duration / 1e6 if container.duration else None
        expected = video.frames or (round(seconds * float(video.average_rate)) if seconds and video.average_rate else None)
        timestamps = deque()  # (pts, time_base) of the frames waiting in the colorizer: a batch at most

        def decoded():
            nonlocal frames_seen
            streams = [video, *(s for s in audio_in if s.index in audio_out)]
            for packet in container.demux(*streams):
                if packet.stream.type == "audio":
                    if packet.dts is None:
                        continue
                    if max_seconds is not None and packet.pts is not None and packet.pts * packet.time_base >= max_seconds:
                        continue
                    packet.stream = audio_out[packet.stream.index]
                    output.mux(packet)
                    continue
                for frame in packet.decode():
                    if max_seconds is not None and frame.time is not None and frame.time >= max_seconds:
                        return
                    timestamps.append((frame.pts, frame.time_base))
                    frames_seen += 1
                    gray = _gray_frame(frame, *coded)
                    if mirrored:
                        gray = gray[:, ::-1]
                    yield np.ascontiguousarray(np.rot90(gray, turns)) if turns or mirrored else gray

        try:
            for index, rgb in enumerate(colorizer.frames(decoded())):
                out = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=out_video.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG")
                pts, time_base = timestamps.popleft()
                out.pts, out.time_base = (pts, time_base) if pts is not None else (index, 1 / out_video.average_rate)
                output.mux(out_video.encode(out))
                if progress is not None:
                    progress(index + 1, expected)
            output.mux(out_video.encode(None))
        except av.error.FFmpegError as err:
            raise VideoError(str(source), f"corrupt video data after frame {frames_seen} ({err.strerror or err})") from None
        if colorizer.frames_done == 0:
            raise VideoError(str(source), "holds no video frames that can be decoded")
        if max_seconds is None and expected and colorizer.frames_done < 0.9 * expected:
            notes.append(f"only {colorizer.frames_done} of the {expected} frames the file declares could be decoded: truncated?")
        if max_seconds is not None and expected and colorizer.frames_done < expected:
            notes.append(f"the first {max_seconds:g} s colorized ({colorizer.frames_done} of {expected} frames)")
        output.close()
        output = None
        os.replace(temporary, destination)
    finally:
        container.close()
        if output is not None:
            try:
                output.close()
            except Exception:  # a half-written file: it is removed just below
                pass
        temporary.unlink(missing_ok=True)
    return VideoResult(
        destination, colorizer.frames_done, width, height, float(video.average_rate or 0), time.perf_counter() - started, colorizer.cuts, len(audio_out), notes
    )
