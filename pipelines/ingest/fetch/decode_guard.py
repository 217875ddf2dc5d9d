"""Decompression-bomb guard: refuse an image by the size its header declares, before anything decodes it.

img2dataset checks `max_image_area` only after `cv2.imdecode` has decoded the whole image, so a tiny file
declaring 30000x30000 pixels is decoded first (OpenCV's own cap is 2^30 pixels). Reading the header with
Pillow costs a few hundred bytes and covers both decoders.
"""

from __future__ import annotations

import io
import os
import threading

from PIL import Image

from pipelines.ingest.fetch.config import PILLOW_MAX_IMAGE_PIXELS
from pipelines.ingest.fetch.reasons import IMAGE_TOO_MANY_PIXELS, refusal_message

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # albumentations phones home on import otherwise

from img2dataset.resizer import Resizer  # noqa: E402  (after the environment above)

# Pillow's own bomb check runs inside Image.open and raises (over 2x its limit) without telling the size, or
# warns. The check here must see the size, so Pillow's limit is lifted for the header read only; it is a
# process-wide setting, hence the lock, and the window is one header parse (no pixel data is decoded in it).
_PIL_LIMIT_LOCK = threading.Lock()


def declared_size(stream: io.BufferedIOBase) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when Pillow cannot read the header; rewinds `stream`."""
    stream.seek(0)
    try:
        with _PIL_LIMIT_LOCK:
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                with Image.open(stream) as image:  # lazy: parses the header, decodes no pixels
                    return image.size
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except Exception:  # noqa: BLE001 - any header Pillow cannot read is left to the decoder, which reports it
        return None
    finally:
        stream.seek(0)


def image_pixels_error(stream: io.BufferedIOBase, max_pixels: int) -> str | None:
    """`"image_too_many_pixels: WxH"` when the header declares more than `max_pixels` pixels, else None."""
    size = declared_size(stream)
    if size is None:
        return None
    width, height = size
    if width * height > max_pixels:
        return refusal_message(IMAGE_TOO_MANY_PIXELS, f"{width}x{height}")
    return None


class GuardedResizer(Resizer):
    """img2dataset's Resizer that first refuses images whose header declares too many pixels."""

    def __init__(self, *args, max_image_pixels: int = PILLOW_MAX_IMAGE_PIXELS, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_image_pixels = max_image_pixels

    def __call__(self, img_stream, blurring_bbox_list=None):
        """img2dataset's `(img, width, height, original_width, original_height, error)`; all None but the
        error on refusal, as the Resizer's own failures are."""
        error = image_pixels_error(img_stream, self.max_image_pixels)
        if error is not None:
            return None, None, None, None, None, error
        return super().__call__(img_stream, blurring_bbox_list)
