"""ImageHashAnnotator: adds a perceptual hash (imagehash pHash, 64 bits as 16 hex digits) for near-duplicate dedup."""

from __future__ import annotations

import io
from typing import ClassVar

import pyarrow as pa

from pipelines.curate import columns as C
from pipelines.core.stage import Stage, StageConfig


class ImageHashConfig(StageConfig):
    """Where the encoded images are and which hash size to use (8 gives 64-bit hashes)."""

    image_column: str = C.JPG
    hash_size: int = 8


class ImageHashAnnotator(Stage):
    """Decodes each image and stores its pHash; an undecodable image gets a null hash."""

    config_cls: ClassVar[type[StageConfig]] = ImageHashConfig
    name: ClassVar[str] = "image_hash"

    def process(self, batch: pa.Table) -> pa.Table:
        import imagehash
        from PIL import Image

        hashes = []
        for data in batch[self.config.image_column].to_pylist():
            try:
                with Image.open(io.BytesIO(data or b"")) as img:
                    img.draft("L", (64, 64))  # JPEG DCT scaling: pHash only looks at a 32x32 grey image
                    hashes.append(str(imagehash.phash(img, hash_size=self.config.hash_size)))
            except Exception:  # an undecodable image simply has no hash; the CLIP stage records the error
                hashes.append(None)
        out = batch.drop_columns([C.PHASH]) if C.PHASH in batch.column_names else batch
        return out.append_column(C.PHASH, pa.array(hashes, pa.string()))
