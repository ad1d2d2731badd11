"""Tests for engine/data.py (data-set registry) and engine/images.py (safe image loading)."""

from __future__ import annotations

import hashlib
import io
import stat
import struct
import urllib.error
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import data, limits
from engine.data import images, sets
from engine.data.shapes import SHAPE_CLASSES
from engine.errors import UserInputError

BUNDLED = ["digits", "faces", "shapes"]
SMALL = {"shapes": {"num_images": 400}}  # keeps the parametrized tests quick


def _png(img: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def _rgb(seed: int, size: tuple[int, int] = (12, 10)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def _image_zip(counts: dict[str, int], prefix: str = "") -> bytes:
    files = {}
    for c, (cls, n) in enumerate(counts.items()):
        for i in range(n):
            img = _rgb(100 * c + i, (10 + i, 14)) if c != 1 else _rgb(i).convert("L")  # mixed modes
            files[f"{prefix}{cls}/{i}.png"] = _png(img)
    return _zip(files)


def _row_hashes(x: torch.Tensor) -> set[str]:
    return {hashlib.sha1(row.numpy().tobytes()).hexdigest() for row in x}


@pytest.fixture(scope="module")
def digits() -> data.Dataset:
    return data.load("digits")


# ----------------------------------------------------------------------------- registry
def test_names_in_lecture_order_and_info_without_loading():
    assert data.names() == ["digits", "faces", "shapes", "mnist", "fashion_mnist", "cifar10"]
    for name in data.names():
        meta = data.info(name)
        assert meta.name == name and meta.source in {"bundled", "procedural", "download"}
        assert meta.channels in (1, 3) and meta.num_classes >= 2 and meta.num_images > 0


def test_register_refuses_duplicates():
    with pytest.raises(ValueError, match="registered twice"):
        sets.register(data.info("digits"))(lambda **kw: None)


def test_unknown_name_lists_valid_names():
    with pytest.raises(UserInputError, match="unknown data set 'imagenet'; choose one of: digits, faces, shapes"):
        data.load("imagenet")
    with pytest.raises(UserInputError, match="imagenet"):
        data.info("imagenet")


@pytest.mark.parametrize(("name", "options"), [("digits", {"num_images": 100}), ("shapes", {"colour": 1})])
def test_unknown_option_rejected(name, options):
    with pytest.raises(UserInputError, match="unknown option"):
        data.load(name, **options)


@pytest.mark.parametrize("num_images", [79, 60001, 1.5, True])
def test_option_bounds_and_types(num_images):
    with pytest.raises(UserInputError, match="num_images"):
        data.load("shapes", num_images=num_images)


@pytest.mark.parametrize("image_size", [3, 257, "32"])
def test_image_size_bounds(image_size):
    with pytest.raises(UserInputError, match="image_size"):
        data.load("digits", image_size=image_size)


def test_default_root_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(sets.DATA_ENV, str(tmp_path))
    assert data.default_root() == tmp_path
    monkeypatch.delenv(sets.DATA_ENV)
    assert data.default_root() == Path.home() / ".cache" / "visionexplorer" / "data"


# ----------------------------------------------------------------------------- bundled sets
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_set_shapes_dtypes_ranges(name):
    meta = data.info(name)
    ds = data.load(name, **SMALL.get(name, {}))
    assert ds.name == name and ds.title == meta.title
    assert ds.channels == meta.channels and ds.image_size == meta.native_size
    assert len(ds.class_names) == meta.num_classes
    total = len(ds.train) + len(ds.val) + len(ds.test)
    assert total == SMALL.get(name, {}).get("num_images", meta.num_images)
    for split in (ds.train, ds.val, ds.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (meta.channels, meta.native_size, meta.native_size)
        assert split.x.shape[0] == split.y.shape[0]
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
        assert 0 <= split.y.min() and split.y.max() < meta.num_classes
    assert ds.train.x.max() > 0.9 and ds.train.x.min() < 0.1  # really uses the range
    assert name in repr(ds) and "train=" in repr(ds)


def test_shapes_default_generation_is_balanced():
    ds = data.load("shapes")
    y = torch.cat([ds.train.y, ds.val.y, ds.test.y])
    assert len(y) == 12000 and torch.bincount(y).tolist() == [1500] * 8
    assert ds.class_names == list(SHAPE_CLASSES)


def test_faces_first_half_are_faces():
    ds = data.load("faces")
    assert ds.class_names == ["face", "non-face"]
    for split in (ds.train, ds.val, ds.test):
        assert torch.bincount(split.y, minlength=2)[0] == torch.bincount(split.y, minlength=2)[1]


@pytest.mark.parametrize("name", ["digits", "shapes"])
def test_split_sizes_70_10_20_per_class(name):
    ds = data.load(name, **SMALL.get(name, {}))
    counts = [torch.bincount(s.y, minlength=len(ds.class_names)) for s in (ds.train, ds.val, ds.test)]
    per_class = sum(counts)
    for part, fraction in zip(counts, (0.7, 0.1, 0.2)):
        assert ((part - fraction * per_class).abs() <= 1).all()


def test_splits_disjoint():
    ds = data.load("shapes", num_images=400)  # noisy images: every image is unique
    hashes = [_row_hashes(s.x) for s in (ds.train, ds.val, ds.test)]
    assert sum(map(len, hashes)) == 400 == len(set().union(*hashes))


def test_stratified_indices_partition_and_keep_tiny_classes_in_train():
    y = torch.tensor([0] * 50 + [1] * 20 + [2] * 2 + [3])
    parts = sets._stratified(y, sets.SPLIT_FRACTIONS, torch.Generator().manual_seed(0))
    joined = torch.cat(parts)
    assert sorted(joined.tolist()) == list(range(len(y)))
    assert set(y[parts[0]].tolist()) == {0, 1, 2, 3}


def test_determinism_by_seed(digits):
    again, other = data.load("digits", seed=0), data.load("digits", seed=1)
    torch.testing.assert_close(again.train.x, digits.train.x, rtol=0, atol=0)
    assert torch.equal(again.test.y, digits.test.y)
    assert not torch.equal(other.train.x, digits.train.x)
    a, b = data.load("shapes", num_images=200, seed=3), data.load("shapes", num_images=200, seed=3)
    assert torch.equal(a.train.x, b.train.x)
    assert not torch.equal(a.train.x, data.load("shapes", num_images=200, seed=4).train.x)


def test_image_size_resizes_every_split(digits):
    ds = data.load("digits", image_size=20)
    for split, orig in zip((ds.train, ds.val, ds.test), (digits.train, digits.val, digits.test)):
        assert split.x.shape == (len(orig), 1, 20, 20)
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
    assert ds.image_size == 20


def test_mean_std_match_train_split(digits):
    x = digits.train.x.double()
    torch.testing.assert_close(torch.tensor(digits.mean), x.mean(dim=(0, 2, 3)).float())
    torch.testing.assert_close(torch.tensor(digits.std), x.std(dim=(0, 2, 3), correction=0).float())
    ds = data.load("shapes", num_images=160)
    assert len(ds.mean) == len(ds.std) == 3 and min(ds.std) > 0


def test_progress_reports_fractions():
    seen = []
    data.load("faces", progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert all(isinstance(m, str) and m for _, m in seen)


# ----------------------------------------------------------------------------- torchvision sets
@pytest.mark.parametrize(("name", "cls_name"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST"),
                                                ("cifar10", "CIFAR10")])
def test_torchvision_offline_message_names_folder(monkeypatch, tmp_path, name, cls_name):
    import torchvision.datasets

    def offline(self):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(getattr(torchvision.datasets, cls_name), "download", offline)
    with pytest.raises(UserInputError) as err:
        data.load(name, root=tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "offline" in message and "http" in message
    if name != "cifar10":
        assert str(tmp_path / cls_name / "raw") in message


def test_memory_limit_checked_before_loading(tmp_path):
    with pytest.raises(UserInputError, match="image_size 256 .* GB"):
        data.load("cifar10", image_size=256, root=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing was downloaded or created


def _idx(array: np.ndarray) -> bytes:
    """The IDX format of the MNIST files: magic (0, 0, 0x08 = ubyte, ndim), big-endian sizes."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_loads_from_existing_files_without_network(monkeypatch, tmp_path):
    import torchvision.datasets

    def no_network(self):
        raise AssertionError("download attempted although the files exist")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", no_network)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 100), ("t10k", 30)):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(_idx(rng.integers(0, 256, (n, 28, 28))))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(np.arange(n) % 10))
    ds = data.load("mnist", root=tmp_path, image_size=16)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 30)  # official test kept
    assert torch.bincount(ds.val.y).tolist() == [1] * 10  # val is 10 % of train, stratified
    assert ds.train.x.shape[1:] == (1, 16, 16) and ds.class_names[0] == "0"
    assert 0.0 <= ds.test.x.min() and ds.test.x.max() <= 1.0


# ----------------------------------------------------------------------------- user folders
def test_load_folder_from_zip_bytes():
    ds = data.load_folder(_image_zip({"cat": 8, "dog": 6, "fox": 5}, prefix="pets/"), image_size=16)
    assert ds.name == "upload:my_data" and ds.class_names == ["cat", "dog", "fox"]
    assert ds.channels == 3 and ds.image_size == 16 and ds.skipped == []
    assert len(ds.train) + len(ds.val) + len(ds.test) == 19
    assert ds.train.x.shape[1:] == (3, 16, 16) and set(ds.train.y.tolist()) == {0, 1, 2}


def test_load_folder_from_directory_gray_and_tiny_classes(tmp_path):
    for cls, n in {"a": 1, "b": 2, "c": 4}.items():
        (tmp_path / cls).mkdir()
        for i in range(n):
            _rgb(i).convert("L").save(tmp_path / cls / f"{i}.png")
    (tmp_path / ".DS_Store").write_bytes(b"junk")
    ds = data.load_folder(tmp_path, image_size=8, name="tiny")
    assert ds.channels == 1 and ds.name == "upload:tiny"
    assert set(ds.train.y.tolist()) == {0, 1, 2}  # every class has a train example


def test_load_folder_skips_broken_file():
    files = {f"{c}/{i}.png": _png(_rgb(i)) for c in ("x", "y") for i in range(3)}
    files["y/broken.png"] = b"\x89PNG\r\n\x1a\n not really"
    ds = data.load_folder(_zip(files), image_size=8)
    assert len(ds.skipped) == 1 and "y/broken.png" in ds.skipped[0]
    assert len(ds.train) + len(ds.val) + len(ds.test) == 6


def test_load_folder_needs_two_classes():
    with pytest.raises(UserInputError, match="at least 2 class folders.*only"):
        data.load_folder(_image_zip({"only": 4}))


def test_load_folder_only_broken_images():
    files = {f"{c}/{i}.png": b"not an image" for c in ("x", "y") for i in range(2)}
    with pytest.raises(UserInputError, match="none of the 4 files"):
        data.load_folder(_zip(files))


def test_load_folder_rejects_too_many_files(monkeypatch):
    monkeypatch.setattr(limits, "MAX_ZIP_FILES", 3)
    with pytest.raises(UserInputError, match="at most 3"):
        data.load_folder(_image_zip({"a": 2, "b": 2}))


def test_load_folder_rejects_missing_source(tmp_path):
    with pytest.raises(UserInputError, match="source"):
        data.load_folder(tmp_path / "nope")


# ----------------------------------------------------------------------------- zips
@pytest.mark.parametrize("member", ["../evil.png", "a/../../evil.png", "/abs/evil.png"])
def test_zip_slip_rejected(tmp_path, member):
    with pytest.raises(UserInputError, match="evil"):
        images.safe_extract_zip(_zip({"ok/1.png": b"x", member: b"x"}), tmp_path / "out")
    assert not (tmp_path / "evil.png").exists()


def test_zip_symlink_rejected(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UserInputError, match="symbolic link"):
        images.safe_extract_zip(buf.getvalue(), tmp_path)


def test_zip_extract_ignores_macos_and_dotfiles(tmp_path):
    content = _zip({"a/1.png": b"1", "__MACOSX/a/._1.png": b"x", "a/.DS_Store": b"x", "b/2.png": b"2"})
    assert images.safe_extract_zip(content, tmp_path) == ["a/1.png", "b/2.png"]
    assert (tmp_path / "b" / "2.png").read_bytes() == b"2"


def test_zip_limits_and_non_zip(monkeypatch, tmp_path):
    with pytest.raises(UserInputError, match="not a zip"):
        images.safe_extract_zip(b"plain text", tmp_path)
    monkeypatch.setattr(limits, "MAX_ZIP_UNCOMPRESSED_BYTES", 10)
    with pytest.raises(UserInputError, match="uncompressed"):
        images.safe_extract_zip(_zip({"a.txt": b"x" * 11}), tmp_path)


# ----------------------------------------------------------------------------- decoding
def test_decode_truncated_png():
    good = _png(_rgb(0, (64, 64)))
    with pytest.raises(UserInputError, match="cut.png could not be decoded as an image"):
        images.decode_image(good[: len(good) // 2], name="cut.png")


def test_decode_checks_pixels_before_decoding(monkeypatch):
    monkeypatch.setattr(limits, "MAX_IMAGE_PIXELS", 100)

    def no_decode(self, *args, **kwargs):
        raise AssertionError("pixels decoded before the size check")

    png = _png(_rgb(0, (20, 20)))
    monkeypatch.setattr(Image.Image, "load", no_decode)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", no_decode)
    with pytest.raises(UserInputError, match="20×20 = 400 pixels.*at most 100"):
        images.decode_image(png)


def test_decode_forged_header_declaring_a_huge_image():
    png = bytearray(_png(Image.new("L", (1, 1))))
    ihdr = struct.pack(">II", 100_000, 100_000) + bytes(png[24:29])  # width, height, the rest
    png[16:29] = ihdr
    png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    with pytest.raises(UserInputError, match="pixels"):
        images.decode_image(bytes(png))


def test_decode_refuses_formats_that_run_external_programs():
    with pytest.raises(UserInputError, match="not one of PNG, JPEG"):
        images.decode_image(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", name="x.eps")


def test_decode_upload_size_limit(monkeypatch):
    monkeypatch.setattr(limits, "MAX_UPLOAD_BYTES", 10)
    with pytest.raises(UserInputError, match="at most"):
        images.decode_image(_png(_rgb(0)))


def test_decode_modes():
    rgba = Image.new("RGBA", (4, 3), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    x = images.decode_image(_png(rgba))
    assert x.shape == (3, 3, 4) and x.dtype == torch.float32
    assert x[:, 0, 0].tolist() == [1.0, 1.0, 1.0] and x[:, 1, 1].tolist() == [1.0, 0.0, 0.0]
    assert images.decode_image(_png(rgba.convert("P"))).shape == (3, 3, 4)
    assert images.decode_image(_png(Image.new("LA", (4, 3)))).shape == (3, 3, 4)
    assert images.decode_image(_png(Image.new("CMYK", (4, 3)), "JPEG")).shape == (3, 3, 4)
    gray16 = Image.fromarray(np.array([[0, 32768, 65535]], dtype=np.uint16))
    x16 = images.decode_image(_png(gray16))
    assert x16.shape == (1, 1, 3)
    torch.testing.assert_close(x16[0, 0], torch.tensor([0.0, 32768 / 65535, 1.0]))
    assert images.decode_image(_png(Image.new("1", (5, 2), 1))).tolist() == [[[1.0] * 5] * 2]
    assert images.decode_image(_png(Image.new("L", (2, 2), 51)))[0, 0, 0].item() == pytest.approx(0.2)


def test_decode_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    path = tmp_path / "phone.jpg"
    Image.new("RGB", (8, 4), "white").save(path, exif=exif)
    assert images.decode_image(path).shape == (3, 8, 4)


def test_to_model_input_channels_and_size():
    colour = torch.rand(3, 10, 20)
    gray = images.to_model_input(colour, channels=1, image_size=10)
    expected = (0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])[:, 5:15]  # centre crop
    torch.testing.assert_close(gray[0, 0], expected)
    rgb = images.to_model_input(torch.rand(1, 7, 7), channels=3, image_size=14)
    assert rgb.shape == (1, 3, 14, 14) and torch.equal(rgb[0, 0], rgb[0, 2])
    with pytest.raises(UserInputError, match="channels"):
        images.to_model_input(colour, channels=2, image_size=8)


def test_resize_batch_shape_and_range():
    out = images.resize_batch(torch.rand(5, 3, 40, 30), 16)
    assert out.shape == (5, 3, 16, 16) and 0.0 <= out.min() and out.max() <= 1.0


# ----------------------------------------------------------------------------- photos
@pytest.mark.parametrize("name", data.photo_names())
def test_photos_load(name):
    photo = data.load_photo(name)
    assert photo.dim() == 3 and photo.shape[0] in (1, 3) and photo.dtype == torch.float32
    assert 0.0 <= photo.min() and photo.max() <= 1.0 and photo.max() > 0.5


def test_photo_channels_and_unknown():
    assert data.load_photo("camera").shape[0] == 1 and data.load_photo("astronaut").shape[0] == 3
    assert {"china", "flower", "astronaut", "horse"} <= set(data.photo_names())
    with pytest.raises(UserInputError, match="astronaut"):
        data.load_photo("mona_lisa")


def test_drawing_to_image_is_gray_and_blank_is_none():
    import numpy as np

    from engine.data.images import drawing_to_image

    canvas = np.zeros((20, 20, 4), dtype=np.uint8)
    assert drawing_to_image(canvas) is None
    canvas[5:15, 8:12] = 255
    image = drawing_to_image(canvas)
    assert image.shape == (1, 20, 20) and float(image.max()) == 1.0 and float(image[0, 0, 0]) == 0.0
    with pytest.raises(UserInputError, match="drawing"):
        drawing_to_image(np.zeros((4, 4)))
