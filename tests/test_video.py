"""Video: files through PyAV (size, rate, timestamps, audio copied), temporal fusion, scene cuts,
bad input, the CLI. Clips are made here with PyAV: a pan and zoom over a synthetic photo, a cut
to a second photo, an AAC tone."""

import fractions

import av
import cv2
import numpy as np
import pytest

from colorgan_hub import cli
from colorgan_hub.video import TemporalFusion, VideoColorizer, VideoError, colorize_video, video_output_path

W, H, RATE, SHOT = 96, 64, 25, 10


def scene(seed: int, size: int = 256) -> np.ndarray:
    """A textured colour 'photo' (blurred random blobs), RGB uint8: something optical flow can follow."""
    rng = np.random.default_rng(seed)
    noise = rng.random((size // 8, size // 8, 3)).astype(np.float32)
    image = cv2.GaussianBlur(cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC), (0, 0), 2.0)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def pan(photo: np.ndarray, frames: int, width: int = W, height: int = H) -> list[np.ndarray]:
    """Frames (RGB) of a pan with a slow zoom over `photo`."""
    out = []
    for t in range(frames):
        k = 1.5 + 0.02 * t  # photo pixels per frame pixel
        matrix = np.float32([[k, 0, 10 + 3 * t], [0, k, 20 + t]])
        out.append(cv2.warpAffine(photo, matrix, (width, height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP))
    return out


def two_shots(frames_per_shot: int = SHOT, width: int = W, height: int = H) -> list[np.ndarray]:
    return pan(scene(1), frames_per_shot, width, height) + pan(scene(2), frames_per_shot, width, height)


def write_clip(
    path, frames, audio: bool = True, codec: str = "libx264", pix_fmt: str = "yuv420p", rotation: int = 0, hflip: bool = False, vflip: bool = False
) -> None:
    """Frames as a gray video (what a black-and-white film is) plus a 1 s AAC tone; `rotation`
    (degrees counter-clockwise) and mirroring after it (`hflip`, `vflip`) store it with a display
    matrix, as phones store portrait and front-camera clips."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=RATE)
        video.width, video.height, video.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        if rotation or hflip or vflip:
            video.set_display_rotation(rotation, hflip=hflip, vflip=vflip)
        sound = container.add_stream("aac" if codec != "libvpx-vp9" else "libopus", rate=48000) if audio else None
        container.start_encoding()
        for frame in frames:
            gray = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            container.mux(video.encode(av.VideoFrame.from_ndarray(gray, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            tone = (0.2 * np.sin(np.arange(48000) * 2 * np.pi * 440 / 48000)).astype(np.float32)
            for start in range(0, len(tone), 960):
                chunk = av.AudioFrame.from_ndarray(tone[None, start : start + 960], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = 48000, start, fractions.Fraction(1, 48000)
                container.mux(sound.encode(chunk))
            container.mux(sound.encode(None))


def read(path):
    """(gray frames, frame pts, average rate, audio packet payloads) of a video file."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = video.average_rate
        grays, pts = [], []
        for frame in container.decode(video=0):
            grays.append(frame.to_ndarray(format="rgb24"))
            pts.append(float(frame.pts * frame.time_base))
    with av.open(str(path)) as container:
        audio = [bytes(p) for p in container.demux(audio=0) if p.size] if container.streams.audio else []
    return grays, pts, rate, audio


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "film.mp4"
    write_clip(path, two_shots())
    return path


def test_video_keeps_size_rate_timestamps_lightness_and_audio(tiny_model, clip, tmp_path):
    result = colorize_video(tiny_model, clip, tmp_path / "out.mp4")
    frames_in, pts_in, rate_in, audio_in = read(clip)
    frames_out, pts_out, rate_out, audio_out = read(tmp_path / "out.mp4")
    assert (result.frames, result.width, result.height, result.audio_streams) == (2 * SHOT, W, H, 1)
    assert len(frames_out) == len(frames_in) and frames_out[0].shape == (H, W, 3)
    assert rate_out == rate_in and pts_out == pytest.approx(pts_in)
    assert audio_out == audio_in  # the same packets, untouched
    luma = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(float) for f in (frames_in[5], frames_out[5])]
    assert np.abs(luma[0] - luma[1]).mean() < 3  # the film's own lightness, through two lossy encodes
    chroma = np.abs(frames_out[5].astype(int) - frames_out[5].mean(axis=2, keepdims=True)).mean()
    assert chroma > 1  # colour was added
    assert not list(tmp_path.glob(".*partial*"))


def test_scene_cut_found_and_nothing_bleeds_across_it(tiny_model):
    frames = two_shots()
    fused = VideoColorizer(tiny_model, stability=0.8)
    independent = VideoColorizer(tiny_model, stability=0.0)
    out_fused, out_independent = list(fused.frames(frames)), list(independent.frames(frames))
    assert fused.cuts == [SHOT] and independent.cuts == [SHOT]
    np.testing.assert_array_equal(out_fused[SHOT], out_independent[SHOT])  # the new shot starts from its own colours
    np.testing.assert_array_equal(out_fused[0], out_independent[0])
    assert not np.array_equal(out_fused[SHOT + 1], out_independent[SHOT + 1])  # then it carries colour


def test_fusion_halves_flicker_of_a_static_shot():
    """A static scene whose per-frame predictions jitter: the fused colour jitters far less,
    and settles on the mean prediction."""
    rng = np.random.default_rng(0)
    gray = cv2.cvtColor(scene(3, 128)[:72], cv2.COLOR_RGB2GRAY)
    truth = np.full((72, 128, 2), 20.0, np.float32)
    fusion, fused, raw = TemporalFusion(0.8), [], []
    for _ in range(30):
        prediction = truth + rng.normal(0, 5, truth.shape).astype(np.float32)
        raw.append(prediction)
        fused.append(fusion(gray, prediction)[0])
    flicker = lambda seq: np.mean([np.abs(b - a).mean() for a, b in zip(seq[10:], seq[11:])])  # noqa: E731
    assert flicker(fused) < 0.5 * flicker(raw)
    assert np.abs(fused[-1] - truth).mean() < 0.5 * np.abs(raw[-1] - truth).mean()


def test_fusion_follows_motion():
    """Colour painted on the scene moves with it: after a shift of the frame the carried colour
    lands on the same scene points, not on the same pixels."""
    photo = cv2.cvtColor(scene(4, 256), cv2.COLOR_RGB2GRAY)
    first, second = photo[40:112, 40:168], photo[40:112, 44:172]  # the view moves 4 px right
    ab = np.zeros((72, 128, 2), np.float32)
    ab[:, 60:70] = 50.0  # a stripe of colour at scene x = 100..109
    fusion = TemporalFusion(0.9)
    fusion(first, ab)
    carried, cut = fusion(second, np.zeros_like(ab))
    assert not cut
    column = carried[10:60, :, 0].mean(axis=0)
    assert 54 <= int(np.argmax(column)) <= 58  # scene x = 100..109 is now at 56..65


def test_frames_api_takes_gray_rgb_and_pil_and_names_a_bad_frame(tiny_model):
    from PIL import Image

    frames = two_shots(3)
    inputs = [frames[0], cv2.cvtColor(frames[1], cv2.COLOR_RGB2GRAY), Image.fromarray(frames[2])]
    outputs = list(tiny_model.colorize_frames(inputs, stability=0.5))
    assert [o.shape for o in outputs] == [(H, W, 3)] * 3 and outputs[0].dtype == np.uint8
    with pytest.raises(VideoError, match=r"frame 1: expected .* uint8"):
        list(tiny_model.colorize_frames([frames[0], frames[1].astype(np.float32)]))
    with pytest.raises(ValueError, match="stability"):
        VideoColorizer(tiny_model, stability=1.0)


@pytest.mark.parametrize(
    "suffix,codec,pix_fmt", [(".mov", "libx264", "yuv420p"), (".mkv", "libx264", "yuv420p"), (".avi", "mpeg4", "yuv420p"), (".webm", "libvpx-vp9", "yuv420p")]
)
def test_containers(tiny_model, tmp_path, suffix, codec, pix_fmt):
    source = tmp_path / f"film{suffix}"
    write_clip(source, two_shots(4), audio=suffix != ".avi", codec=codec, pix_fmt=pix_fmt)
    result = colorize_video(tiny_model, source, video_output_path(source, tmp_path / "out"))
    frames, _, _, audio = read(tmp_path / "out" / source.name)
    assert len(frames) == result.frames == 8 and frames[0].shape == (H, W, 3)
    assert bool(audio) == (suffix != ".avi")


@pytest.mark.parametrize(
    "rotation, hflip, vflip, shown",
    [
        (90, False, False, lambda x: np.rot90(x, 1)),
        (-90, False, False, lambda x: np.rot90(x, 3)),
        (180, False, False, lambda x: np.rot90(x, 2)),
        (0, True, False, lambda x: x[:, ::-1]),
        (0, False, True, lambda x: x[::-1]),
        (90, True, False, lambda x: np.rot90(x, 1)[:, ::-1]),  # turned, then mirrored
    ],
)
def test_clip_stored_rotated_or_mirrored_is_colorized_and_written_as_players_show_it(tiny_model, tmp_path, rotation, hflip, vflip, shown):
    source = tmp_path / "phone.mp4"
    write_clip(source, two_shots(3), audio=False, rotation=rotation, hflip=hflip, vflip=vflip)
    result = colorize_video(tiny_model, source, tmp_path / "upright.mp4")
    frames_in, frames_out = read(source)[0], read(tmp_path / "upright.mp4")[0]
    assert (result.height, result.width) == frames_out[0].shape[:2] == shown(frames_in[0]).shape[:2]
    with av.open(str(tmp_path / "upright.mp4")) as container:  # upright frames, no display matrix left to apply
        assert not [d for d in next(container.decode(video=0)).side_data if d.type.name == "DISPLAYMATRIX"]
    luma = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(float) for f in (frames_in[2], frames_out[2])]
    assert np.abs(shown(luma[0]) - luma[1]).mean() < 3  # the picture as players show the input
    assert np.abs(luma[0][:, ::-1] - luma[0]).mean() > 10  # (a picture whose mirror image differs)
    assert any("turned upright" in note for note in result.notes)


def test_odd_size_is_kept(tiny_model, tmp_path):
    source = tmp_path / "odd.mkv"
    write_clip(source, two_shots(3, 95, 63), audio=False, pix_fmt="yuv444p")
    colorize_video(tiny_model, source, tmp_path / "odd_out.mkv")
    assert read(tmp_path / "odd_out.mkv")[0][0].shape == (63, 95, 3)


def _bad_inputs(tmp_path, clip):
    data = clip.read_bytes()
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])  # its index (moov) is at the end: gone
    corrupt = bytearray(data)
    corrupt[len(data) // 3 : len(data) // 3 + 4000] = np.random.default_rng(1).bytes(4000)
    (tmp_path / "corrupt.mp4").write_bytes(bytes(corrupt))
    (tmp_path / "empty.mp4").write_bytes(b"")
    with av.open(str(tmp_path / "sound.m4a"), "w") as container:  # audio only
        sound = container.add_stream("aac", rate=48000)
        chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        chunk.sample_rate, chunk.pts = 48000, 0
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    with av.open(str(tmp_path / "zero.mkv"), "w") as container:  # a video stream with no frames (sound only)
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        sound = container.add_stream("aac", rate=48000)
        container.mux(sound.encode(chunk))
        container.mux(sound.encode(None))
    with av.open(str(tmp_path / "header.mkv"), "w") as container:  # a header and nothing else
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        container.start_encoding()
    (tmp_path / "notes.txt").write_text("Shot list\n" + "1. the harbour at dawn, a slow pan left\n" * 40)  # FFmpeg reads text as ANSI art
    return {
        "notes.txt": "a text file, not a video",
        "garbage.mp4": "not a video FFmpeg can read",
        "truncated.mp4": "not a video FFmpeg can read",
        "corrupt.mp4": "corrupt video data after frame",
        "empty.mp4": "empty file",
        "sound.m4a": r"audio only \(aac\): no video stream",
        "zero.mkv": "holds no video frames",
        "header.mkv": r"ends before any video data \(an empty or cut-off recording\)",
        "missing.mp4": "no such file",
    }


def test_bad_videos_give_one_line_and_leave_nothing(tiny_model, clip, tmp_path):
    cases = _bad_inputs(tmp_path, clip)
    out = tmp_path / "out"
    out.mkdir()
    for name, message in cases.items():
        with pytest.raises(VideoError, match=f"{name}: {message}"):
            colorize_video(tiny_model, tmp_path / name, out / (name + ".mp4"))
    assert list(out.iterdir()) == []
    with pytest.raises(VideoError, match=f"{W}x{H}: frames of 0 megapixels exceed the limit of 0"):
        colorize_video(tiny_model, clip, out / "big.mp4", max_pixels=1000)


def test_interrupted_run_leaves_no_file(tiny_model, clip, tmp_path):
    def stop(done, expected):
        if done == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        colorize_video(tiny_model, clip, tmp_path / "out.mp4", progress=stop)
    assert list(tmp_path.iterdir()) == []


def test_max_seconds_cuts_video_and_audio(tiny_model, clip, tmp_path):
    result = colorize_video(tiny_model, clip, tmp_path / "short.mp4", max_seconds=0.4)
    frames, pts, _, _ = read(tmp_path / "short.mp4")
    assert result.frames == len(frames) == 10 and max(pts) < 0.4
    assert any("first 0.4 s" in note for note in result.notes)


def test_cli_colorizes_videos_and_photos_and_reports_bad_ones(tiny_model_dir, clip, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "film.mp4").write_bytes(clip.read_bytes())
    (folder / "broken.mkv").write_bytes(b"not a video at all")
    cv2.imwrite(str(folder / "still.png"), scene(5, 64))
    code = cli.main(["colorize", str(folder), "-o", str(tmp_path / "out"), "--model", tiny_model_dir, "--stability", "0.5"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["film.mp4", "still.png"]
    assert f"error: {folder / 'broken.mkv'}: not a video FFmpeg can read (Invalid data found when processing input)" in err
    assert any(line.startswith(f"{tmp_path / 'out' / 'film.mp4'}: 20 frames 96x64 at 25 fps, 1 audio stream(s) copied, 1 scene cut(s)") for line in err)
    assert err[-1] == f"colorized 2 of 3 file(s) into {tmp_path / 'out'} (1 failed)"


def test_cli_rejects_stability_of_one_and_score_refuses_videos(clip, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["colorize", str(clip), "--stability", "1"])
    assert stop.value.code == 2 and "--stability must be in [0, 1)" in capsys.readouterr().err
    assert cli.main(["score", str(clip)]) == 1
    assert f"error: {clip}: a video; this command takes photos (colorize takes videos)" in capsys.readouterr().err


def test_truncated_matroska_is_kept_with_a_note(tiny_model, tmp_path):
    source = tmp_path / "film.mkv"
    write_clip(source, two_shots(20), audio=False)
    data = source.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    result = colorize_video(tiny_model, tmp_path / "cut.mkv", tmp_path / "out.mkv")
    assert 0 < result.frames < 40 and (tmp_path / "out.mkv").exists()
    assert any(note.endswith("of the 40 frames the file declares could be decoded: truncated?") for note in result.notes)
