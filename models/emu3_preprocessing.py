"""Emu3's image preprocessing settings, written once for the tokenizer, its stages, the CLI and the assets.

No torch here, so `tessera --help` can read the defaults without loading the model stack."""

TARGET_AREA = 512 * 512  # rescale area of Emu3 pretraining (its SFT uses 720 * 720)
MIN_AREA = 512 * 512  # the processor's area clamp (Emu3ImageProcessor min_pixels / max_pixels)
MAX_AREA = 1024 * 1024
MAX_ASPECT_RATIO = 5.0  # a longer-to-shorter side ratio above this is dropped (aspect_ratio_too_large)
SPATIAL_FACTOR = 8  # sides are multiples of the VQ model's spatial factor (the loaded model's own value wins)
