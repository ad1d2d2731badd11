"""Hostile and odd files: what a classroom uploads from its phones, each refused or read with a clear message.

Engine first (images, zips, run files), then the Train Lab's upload widgets through AppTest: a refused file
shows one message in the user's words, never a traceback, and the session's earlier runs stay.
"""

from __future__ import annotations

import io
import os
import pickle
import stat
import struct
import time
import unicodedata
import zipfile
import zlib

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from engine import data
from engine.data.images import read_image, safe_extract_zip
from engine.errors import UserInputError
from engine.models import ModelConfig, build_from_config
from engine.training.config import TrainConfig
from engine.training.runs import FORMAT, Run, load_run, read_run_file, save_run
from tests.apptest_helpers import assert_no_exception, assert_no_traceback_text, run_page

TRAIN_LAB = "app_pages/start/train_lab.py"


# ----------------------------------------------------------------------------- file makers
def _encode(img: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _blank_png(width: int, height: int) -> bytes:
    """A real, valid 1-bit black PNG of any size, written chunk by chunk: all-zero rows compress ~1000×."""
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    rows = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, grayscale
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", rows) + _chunk(b"IEND", b"")


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _tiny(value: int, mode: str = "L", size: tuple[int, int] = (8, 8)) -> bytes:
    return _encode(Image.fromarray(np.full(size[::-1], value, np.uint8)).convert(mode))


def _class_zip(prefix: str = "", classes: tuple[str, ...] = ("cats", "dogs"), n: int = 3) -> dict[str, bytes]:
    return {f"{prefix}{c}/{i}.png": _tiny((40 * i + 100 * k) % 256) for k, c in enumerate(classes) for i in range(n)}


def _set_flag(archive: bytes, bit: int, *, on: bool = True) -> bytes:
    """Set (or clear) a general-purpose flag bit in every local and central header: zipfile cannot write
    encrypted zips, nor UTF-8 names without the UTF-8 flag (as macOS Finder does)."""
    out = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = out.find(signature)
        while at >= 0:
            flags = struct.unpack_from("<H", out, at + offset)[0]
            struct.pack_into("<H", out, at + offset, flags | bit if on else flags & ~bit)
            at = out.find(signature, at + 4)
    return bytes(out)


# ----------------------------------------------------------------------------- images
@pytest.mark.parametrize(("content", "says"), [
    (b"", "the file is empty"),
    (b"holiday photos, see attached\n", "it is text, not one of PNG, JPEG"),
    (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64), "HEIC photos (iPhone) are not supported; export as JPEG"),
    (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf" + bytes(64), "AVIF images are not supported"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', "SVG drawings are not supported"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF documents are not supported"),
])
def test_files_that_are_no_image_say_what_they_are(content, says):
    with pytest.raises(UserInputError, match=says.replace("(", r"\(").replace(")", r"\)")) as refused:
        read_image(content, name="IMG_0042.png")
    assert "IMG_0042.png" in str(refused.value)


@pytest.mark.parametrize(("fmt", "share"), [("JPEG", 0.5), ("PNG", 0.5), ("PNG", 0.05)])  # cut in the pixels, the header
def test_a_truncated_image_is_called_cut_off(fmt, share):
    photo = _encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)), fmt)
    with pytest.raises(UserInputError, match=rf"cut.img could not be decoded as an image: the {fmt} is cut off \(truncated\)"):
        read_image(photo[: int(len(photo) * share)], name="cut.img")


def test_a_decompression_bomb_is_refused_from_its_header_before_decoding(monkeypatch):
    bomb = _blank_png(30_000, 30_000)  # 900 megapixels (0.9 GB as 8-bit gray) in about 100 kB
    assert len(bomb) < 200_000

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("pixels were decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    start = time.perf_counter()
    with pytest.raises(UserInputError, match="declares 900,000,000 pixels.*decompression bomb.*at most 40,000,000"):
        read_image(bomb, name="bomb.png")
    assert time.perf_counter() - start < 1.0


def test_a_12000_pixel_square_png_names_its_size_and_the_limit(monkeypatch):
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    with pytest.raises(UserInputError, match="12000×12000 = 144,000,000 pixels; an image may have at most 40,000,000"):
        read_image(_blank_png(12_000, 12_000), name="scan.png")


def test_cmyk_jpeg_becomes_rgb_colours():
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # no cyan or black, full magenta and yellow: red
    image = read_image(_encode(cmyk, "JPEG", quality=100)).image
    assert image.shape == (3, 8, 8)
    torch.testing.assert_close(image[:, 4, 4], torch.tensor([1.0, 0.0, 0.0]), atol=0.03, rtol=0)


def test_transparency_is_composited_on_white_and_said():
    rgba = Image.new("RGBA", (4, 4), (0, 0, 255, 255))
    rgba.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red pixel
    rgba.putpixel((1, 0), (0, 0, 0, 128))  # half-transparent black
    decoded = read_image(_encode(rgba), name="logo.png")
    assert decoded.image[:, 0, 0].tolist() == [1.0, 1.0, 1.0]
    torch.testing.assert_close(decoded.image[:, 0, 1], torch.full((3,), 1 - 128 / 255))
    assert decoded.notes == ("logo.png has transparent pixels: transparency was composited on white",)
    assert read_image(_encode(Image.new("RGBA", (4, 4), (9, 9, 9, 255)))).notes == ()  # opaque: nothing to say


def test_palette_la_and_one_bit_images_keep_their_values():
    palette = Image.new("P", (3, 1))
    palette.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    palette.putdata([0, 1, 2])
    assert read_image(_encode(palette)).image[:, 0].T.tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    see_through = read_image(_encode(palette, transparency=1), name="p.png")  # index 1 (green) transparent
    assert see_through.image[:, 0, 1].tolist() == [1.0, 1.0, 1.0] and "composited on white" in see_through.notes[0]
    la = Image.new("LA", (2, 1), (0, 255))
    la.putpixel((1, 0), (0, 0))
    assert read_image(_encode(la)).image[:, 0].T.tolist() == [[0.0] * 3, [1.0] * 3]
    bits = Image.new("1", (4, 1))
    bits.putdata([0, 255, 0, 255])
    assert read_image(_encode(bits)).image.tolist() == [[[0.0, 1.0, 0.0, 1.0]]]


def test_an_exif_rotated_phone_photo_is_shown_upright():
    stored = np.zeros((4, 8, 3), np.uint8)  # as the sensor wrote it: landscape, red left, blue right
    stored[:, :4, 0], stored[:, 4:, 2] = 255, 255
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: turn 90° clockwise to display (a phone held upright)
    image = read_image(_encode(Image.fromarray(stored), "JPEG", exif=exif, quality=100)).image
    assert image.shape == (3, 8, 4)  # portrait
    assert image[0, 1].mean() > 0.8 > image[2, 1].mean()  # red on top
    assert image[2, 6].mean() > 0.8 > image[0, 6].mean()  # blue below


def test_an_animated_gif_gives_its_first_frame_and_says_so():
    frames = [Image.new("RGB", (6, 6), colour) for colour in ("red", "lime", "blue")]
    gif = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    decoded = read_image(gif, name="party.gif")
    assert decoded.image[:, 3, 3].tolist() == [1.0, 0.0, 0.0]
    assert decoded.notes == ("party.gif has 3 frames (an animation or pages); the first frame is used",)


@pytest.mark.parametrize(("fmt", "options"), [("WEBP", {"lossless": True}), ("TIFF", {})])
def test_webp_and_tiff_are_supported(fmt, options):
    pixels = np.random.default_rng(1).integers(0, 256, (5, 7, 3), np.uint8)
    decoded = read_image(_encode(Image.fromarray(pixels), fmt, **options))
    assert decoded.format == fmt and decoded.notes == ()
    torch.testing.assert_close(decoded.image, torch.from_numpy(pixels).permute(2, 0, 1) / 255.0)


# ----------------------------------------------------------------------------- zips
@pytest.mark.parametrize("member", ["../../x", "..\\..\\x", "C:\\Windows\\x", "/etc/x"])
def test_zip_members_cannot_escape_and_nothing_is_written(tmp_path, member):
    dest = tmp_path / "a" / "b" / "out"
    with pytest.raises(UserInputError, match="'..'|absolute path"):
        safe_extract_zip(_zip({"cats/1.png": b"1", member: b"evil"}), dest)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # validated before the first write


def test_zip_bomb_declaring_a_huge_size_is_refused_before_writing(tmp_path):
    archive = bytearray(_zip({"cats/1.png": b"x" * 10}))
    central = archive.find(b"PK\x01\x02")
    struct.pack_into("<I", archive, central + 24, 0xFFFF_FFF0)  # declared uncompressed size: 4 GB
    with pytest.raises(UserInputError, match=r"unpacks to 4096\.0 MB; at most 1024\.0 MB uncompressed"):
        safe_extract_zip(bytes(archive), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_zip_bomb_of_100000_tiny_members_is_refused_unopened(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for i in range(100_000):
            archive.writestr(f"cats/{i}.png", b"")
    with pytest.raises(UserInputError, match="has 100,000 members; at most 50,000"):
        safe_extract_zip(buffer.getvalue(), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("content", "says"), [
    (_zip(_class_zip())[:150], "cut off"),
    (_set_flag(_zip(_class_zip()), 0x1), "password-protected"),
    (_zip(_class_zip()).replace(_tiny(0), _tiny(0)[:-5] + b"XXXXX"), "is damaged"),
])
def test_corrupt_and_locked_zips_say_why(content, says):
    with pytest.raises(UserInputError, match=says):
        data.load_folder(content)


def test_a_zip_without_class_folders_says_how_to_arrange_them():
    with pytest.raises(UserInputError, match="no class folders, only 2 loose files: put each class's images in a folder"):
        data.load_folder(_zip({"a.png": _tiny(0), "readme.txt": b"hello"}))


def test_class_folders_two_levels_down_with_macos_and_windows_litter_are_found():
    files = _class_zip("Downloads/my data/")
    files |= {"__MACOSX/Downloads/my data/cats/._0.png": b"\x00\x05\x16\x07", "Downloads/my data/.DS_Store": b"x",
              "Downloads/my data/dogs/Thumbs.db": b"x", "Downloads/my data/cats/._1.png": b"x"}
    dataset = data.load_folder(_zip(files), image_size=8)
    assert dataset.class_names == ["cats", "dogs"] and dataset.skipped == []
    assert len(dataset.train) + len(dataset.val) + len(dataset.test) == 6


def test_unicode_and_spaces_in_class_names_survive():
    decomposed = unicodedata.normalize("NFD", "café crème")  # how macOS writes accented names
    files = _class_zip(classes=(decomposed, "chiens de race", "猫"))
    assert data.load_folder(_zip(files), image_size=8).class_names == sorted(["café crème", "chiens de race", "猫"])
    # Finder's zips carry UTF-8 names without the UTF-8 flag: read as cp437 they would be "caf├⌐".
    unflagged = _set_flag(_zip(_class_zip(classes=("café", "thé"))), 0x800, on=False)
    assert "caf├⌐/0.png" in zipfile.ZipFile(io.BytesIO(unflagged)).namelist()
    assert data.load_folder(unflagged, image_size=8).class_names == ["café", "thé"]


def test_mixed_sizes_and_modes_make_one_colour_data_set():
    rng = np.random.default_rng(2)
    modes = ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16"]
    files = {}
    for k, cls in enumerate(("a", "b")):
        for i, mode in enumerate(modes):
            size = (5 + 3 * i, 20 - 2 * i)
            pixels = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8))
            img = pixels.convert("L").convert(mode) if mode in ("1", "I;16", "LA") else pixels.convert(mode)
            files[f"{cls}/{i}.{'jpg' if mode == 'CMYK' else 'png'}"] = _encode(img, "JPEG" if mode == "CMYK" else "PNG")
    dataset = data.load_folder(_zip(files), image_size=12)
    assert dataset.skipped == [] and dataset.channels == 3
    x = torch.cat([dataset.train.x, dataset.val.x, dataset.test.x])
    assert x.shape == (16, 3, 12, 12) and 0 <= x.min() and x.max() <= 1


def test_symlink_members_are_refused(tmp_path):
    info = zipfile.ZipInfo("cats/passwords.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, "/etc/shadow")
    with pytest.raises(UserInputError, match="symbolic link"):
        data.load_folder(buffer.getvalue())


# ----------------------------------------------------------------------------- run files
def _tiny_run(model: str = "linear", **options) -> Run:
    model_config = ModelConfig(model, 1, 3, 8, mean=(0.5,), std=(0.25,), options=options)
    config = TrainConfig(data="digits", model=model, epochs=1).to_dict()
    return Run("linear on digits", config, model_config, ["a", "b", "c"], "Digits", build_from_config(model_config))


def _saved(payload: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


class _Shell:
    """Unpickling this runs a shell command: the classic malicious checkpoint."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_pickle_that_runs_a_shell_command_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    for content in (_saved({"format": FORMAT, "model": _Shell(marker)}), pickle.dumps(_Shell(marker))):
        with pytest.raises(UserInputError, match="not a run saved by VisionExplorer"):
            load_run(content)
    assert not marker.exists()
    with pytest.raises(UserInputError, match=r"could run code when opened\), so it was not opened"):
        load_run(_saved({"model": _Shell(marker)}))
    assert not marker.exists()


@pytest.mark.parametrize(("content", "says"), [
    (b"", "the file is empty"),
    (os.urandom(2000), "not a PyTorch file, or it is damaged"),
    (_encode(Image.new("RGB", (4, 4))), "it is an image"),
    (_zip(_class_zip()), r"zip archive of files \(a data set\?\)"),
    (_saved({"fc.weight": torch.zeros(3, 4), "fc.bias": torch.zeros(3)}), r"only weights \(a state_dict of 2 tensors\)"),
    (_saved({"epoch": 3, "optimizer": {}, "model_state": {}}), "PyTorch file of another program .keys: epoch"),
])
def test_files_that_are_no_run_say_what_they_are(content, says):
    with pytest.raises(UserInputError, match="this is not a run saved by VisionExplorer: .*" + says):
        load_run(content)


def test_a_run_with_the_weights_of_another_architecture_is_refused():
    payload = torch.load(io.BytesIO(save_run(_tiny_run())), weights_only=True)
    payload["state_dict"] = _tiny_run("mlp").model.state_dict()
    with pytest.raises(UserInputError, match=r"do not fit a linear model .*another architecture \(\d+ weights missing"):
        load_run(_saved(payload))
    payload["state_dict"] = {"0.mean": 3}  # not even tensors
    with pytest.raises(UserInputError, match="damaged: it has no weights"):
        load_run(_saved(payload))


def test_a_run_describing_a_gigantic_network_is_refused_without_building_it():
    payload = torch.load(io.BytesIO(save_run(_tiny_run())), weights_only=True)
    payload["model_config"] |= {"name": "mlp", "options": {"hidden": [100_000, 100_000]}}  # 10¹⁰ weights: 40 GB
    start = time.perf_counter()
    with pytest.raises(UserInputError, match="do not fit a mlp model"):
        load_run(_saved(payload))
    assert time.perf_counter() - start < 2.0  # the shapes were compared on the meta device


def test_a_run_saved_by_an_older_version_loads_with_defaults_and_says_which():
    run = _tiny_run()
    payload = torch.load(io.BytesIO(save_run(run)), weights_only=True)
    for key in ("history", "dataset_title", "name"):
        del payload[key]
    del payload["version"], payload["model_config"]["mean"], payload["model_config"]["std"]
    del payload["config"]["mixing"], payload["config"]["heads"]  # settings newer than the file
    loaded, notes = read_run_file(_saved(payload))
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded.model(x), run.model(x))  # the saved Normalize buffers, not the defaults
    assert TrainConfig.from_dict(loaded.config).mixing == TrainConfig().mixing and loaded.history.epoch == []
    assert loaded.name == "linear (uploaded)" and loaded.class_names == ["a", "b", "c"]
    assert len(notes) == 1 and "older version" in notes[0]
    assert all(k in notes[0] for k in ("history", "dataset_title", "name", "model_config.mean"))
    del payload["config"]["data"]
    with pytest.raises(UserInputError, match="damaged: its training settings lack data"):
        load_run(_saved(payload))


def test_a_run_from_a_newer_app_or_with_wrong_class_names_is_refused():
    payload = torch.load(io.BytesIO(save_run(_tiny_run())), weights_only=True)
    with pytest.raises(UserInputError, match="newer version of VisionExplorer"):
        load_run(_saved({**payload, "version": 99}))
    with pytest.raises(UserInputError, match="2 class names for a model with 3 outputs"):
        load_run(_saved({**payload, "class_names": ["a", "b"]}))
    with pytest.raises(UserInputError, match="model description lacks num_classes"):
        load_run(_saved({**payload, "model_config": {"name": "linear", "in_channels": 1, "image_size": 8}}))


# ----------------------------------------------------------------------------- the page
def _messages(at) -> list[str]:
    return [e.value for e in at.error] + [i.value for i in at.info]


def test_train_lab_explains_every_refused_upload_and_keeps_the_runs(tmp_path):
    """A session with a run uploads what students have on their phones: one message each, the run stays."""
    run = _tiny_run()
    at = run_page(TRAIN_LAB, session_state={"runs": {run.name: run}}, timeout=120)
    marker = tmp_path / "pwned"
    old = torch.load(io.BytesIO(save_run(run)), weights_only=True)
    del old["history"]
    refused_runs = {"photo.pt": _encode(Image.new("RGB", (9, 9))), "weights.pt": _saved({"w": torch.zeros(2)}),
                    "evil.pt": _saved({"x": _Shell(marker)}), "empty.pt": b""}
    for name, content in refused_runs.items():
        at.file_uploader(key="train.run_upload.file").set_value((name, content, "application/octet-stream")).run()
        assert_no_exception(at, name)
        assert_no_traceback_text(at, name)
        assert any(e.value.startswith(f"{name}: this is not a run saved by VisionExplorer") for e in at.error), name
        assert list(at.session_state["runs"]) == [run.name]
    assert not marker.exists()
    at.file_uploader(key="train.run_upload.file").set_value(("old.pt", _saved(old), "application/octet-stream")).run()
    assert any("older version" in m for m in _messages(at)) and len(at.session_state["runs"]) == 2

    images = {"IMG_1.HEIC": (b"\x00\x00\x00\x18ftypheic" + bytes(80), "HEIC photos (iPhone) are not supported"),
              "bomb.png": (_blank_png(30_000, 30_000), "decompression bomb"),
              "logo.png": (_encode(Image.new("RGBA", (8, 8))), "transparency was composited on white"),
              "party.gif": (_encode(Image.new("L", (8, 8)), "GIF", save_all=True,
                                    append_images=[Image.new("L", (8, 8), 255)]), "the first frame is used"),
              "drawing.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "SVG drawings are not supported")}
    for name, (content, says) in images.items():
        at.file_uploader(key="try.upload.file").set_value((name, content, "image/png")).run()
        assert_no_exception(at, name)
        assert any(says in m for m in _messages(at)), (name, _messages(at))
        assert len(at.session_state["runs"]) == 2
    for name, content in {"locked.zip": _set_flag(_zip(_class_zip()), 0x1), "one.zip": _zip(_class_zip(classes=("cats",)))}.items():
        at.selectbox(key="train.data").set_value("upload").run()
        at.file_uploader(key="train.zip.file").set_value((name, content, "application/zip")).run()
        assert_no_exception(at, name)
        assert at.error and len(at.session_state["runs"]) == 2


def test_numbers_from_the_address_bar_outside_their_range_are_ignored_with_a_warning():
    """nan passes no comparison and inf none of our ranges; negative, zero and huge fail theirs."""
    typed = {"ep": "nan", "bs": "0", "lr": "inf", "mom": "-1", "wd": "1e308", "pat": "-inf", "ls": "NaN"}
    at = run_page(TRAIN_LAB, query_params=typed, timeout=120)
    warned = [w.value for w in at.warning]
    for param, text in typed.items():
        assert f"Ignored ?{param}={text}: not a valid value here." in warned, warned
    assert all(np.isfinite(w.value) for w in at.number_input)
    assert at.number_input(key="train.batch_size").value >= 1
