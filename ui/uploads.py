"""Upload widgets: images (file or camera), saved Runs and data-set zips, validated by the engine.

Each widget pairs a plain function (bytes → result or message, testable without a browser) with a
`*_ui` function that draws the uploader and shows the engine's `UserInputError` with `st.error`.
Decoded results are kept in session state per uploaded file, so a rerun does not decode again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st
from torch import Tensor

from engine import limits
from engine.errors import UserInputError
from engine.data.images import drawing_to_image, read_image
from engine.training.runs import Run, read_run_file

IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"]
# Accepted by the uploader only to be explained: the browser would refuse them with a bare "not allowed".
EXPLAINED_TYPES = ["heic", "heif", "avif", "svg", "pdf"]
MAX_UPLOAD_MB = limits.MAX_UPLOAD_BYTES // 1024**2


@dataclass(frozen=True)
class Upload:
    """What an uploaded file gave: its value (an image, a Run) or the error refusing it, and notes."""

    value: Any = None
    error: str | None = None
    notes: tuple[str, ...] = ()


def _mb(num_bytes: int) -> str:
    return f"{num_bytes / 1024**2:,.1f} MB"


def size_message(num_bytes: int, *, name: str = "the file") -> str | None:
    """Why a file of `num_bytes` is refused, or None if it is within the upload limit."""
    if num_bytes > limits.MAX_UPLOAD_BYTES:
        return f"{name} is {_mb(num_bytes)}; an upload may be at most {MAX_UPLOAD_MB} MB"
    return None


def decode_upload(data: bytes, *, name: str = "image") -> Upload:
    """The image (C, H, W) in [0, 1] with notes (transparency, frames), or the message saying why it is unusable."""
    try:
        decoded = read_image(data, name=name)
    except UserInputError as error:
        return Upload(error=str(error))
    return Upload(decoded.image, notes=decoded.notes)


def read_run(data: bytes, *, name: str = "the file") -> Upload:
    """The Run with notes (defaults an older file needed), or the message saying why `data` is not a run."""
    too_big = size_message(len(data), name=name)
    if too_big:
        return Upload(error=too_big)
    try:
        run, notes = read_run_file(data)
    except UserInputError as error:
        return Upload(error=f"{name}: {error}")
    return Upload(run, notes=tuple(notes))


def _shown(upload: Upload):
    """Draw the upload's error or notes; its value, or None when it was refused."""
    if upload.error:
        st.error(upload.error)
        return None
    for note in upload.notes:
        st.info(note, icon=":material/info:")
    return upload.value


def _cached(key: str, file, convert):
    """`convert(bytes, name)` for this uploaded file, computed once per file and kept under `key`."""
    cached = st.session_state.get(key)
    if cached is not None and cached[0] == file.file_id:
        return cached[1]
    result = convert(file.getvalue(), file.name)
    st.session_state[key] = (file.file_id, result)
    return result


def image_help() -> str:
    return (f"PNG, JPEG, BMP, GIF, WebP or TIFF (not HEIC or SVG: export those as JPEG or PNG); at most "
            f"{MAX_UPLOAD_MB} MB and {limits.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels. "
            "The image stays in this session only.")


def image_upload_ui(label: str = "Upload an image", key: str = "upload.image",
                    help: str | None = None) -> Tensor | None:
    """A file uploader (or, toggled, the camera); returns the decoded image (C, H, W) in [0, 1] or None."""
    use_camera = st.toggle("Use the camera instead", key=f"{key}.use_camera",
                           help="Take a photo with your webcam instead of choosing a file.")
    if use_camera:
        file = st.camera_input("Take a photo", key=f"{key}.camera", help=help)
    else:
        file = st.file_uploader(label, type=IMAGE_TYPES + EXPLAINED_TYPES, key=f"{key}.file",
                                max_upload_size=MAX_UPLOAD_MB, help=help or image_help())
    if file is None:
        return None
    return _shown(_cached(f"{key}.decoded", file, lambda data, name: decode_upload(data, name=name)))


def drawing_ui(key: str = "upload.drawing") -> Tensor | None:
    """A square canvas to draw on with the mouse or a finger (white ink on black, like the digits)."""
    from streamlit_drawable_canvas import st_canvas

    st.caption("Draw one large character filling most of the square; the model sees it shrunk to its input size.")
    stroke = st.slider("Brush size", 8, 40, 22, key=f"{key}.stroke", help="Thicker strokes survive shrinking to 8×8.")
    result = st_canvas(stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
                       height=280, width=280, drawing_mode="freedraw", return_image_data=True,
                       key=f"{key}.canvas")
    if result is None or result.image_data is None:
        return None
    image = drawing_to_image(result.image_data)
    if image is None:
        st.info("The canvas is empty: draw something.")
    return image


def run_upload_ui(key: str = "upload.run") -> Run | None:
    """Upload a Run saved with its download button; returns it (the same object on every rerun) or None."""
    file = st.file_uploader(
        "Upload a saved run (.pt)", type=["pt"], key=f"{key}.file", max_upload_size=MAX_UPLOAD_MB,
        help=f"A file from a run's download button; at most {MAX_UPLOAD_MB} MB. "
             "It is opened with weights_only=True, so it cannot run code.")
    if file is None:
        return None
    return _shown(_cached(f"{key}.loaded", file, lambda data, name: read_run(data, name=name)))


def zip_upload_ui(key: str = "upload.zip") -> bytes | None:
    """Upload a data-set zip (one folder per class); returns its bytes or None, refusing files over the limit."""
    file = st.file_uploader(
        "Upload a data set (.zip)", type=["zip"], key=f"{key}.file", max_upload_size=MAX_UPLOAD_MB,
        help=(f"One folder per class, with images inside. At most {MAX_UPLOAD_MB} MB, "
              f"{limits.MAX_ZIP_UNCOMPRESSED_BYTES / 1024**3:g} GB unpacked and {limits.MAX_ZIP_FILES:,} files."))
    if file is None:
        return None
    message = size_message(file.size, name=file.name)
    if message:
        st.error(message)
        return None
    return file.getvalue()
