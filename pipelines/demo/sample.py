"""The bundled demo sample: a LAION-format metadata file over images served from 127.0.0.1.

Real photographs come from scikit-image's bundled data; the rest are generated. A share of rows fail on purpose:
404s, non-image bodies, truncated JPEGs, opt-out headers, duplicate / empty / non-http URLs, so every outcome shows.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

PHOTOS = {
    "astronaut.png": "Astronaut Eileen Collins in an orange flight suit, NASA portrait",
    "chelsea.png": "chelsea the tabby cat looking at the camera",
    "coffee.png": "a cup of coffee on a saucer, top view",
    "rocket.jpg": "SpaceX Falcon 9 rocket on the launch pad",
    "hubble_deep_field.jpg": "Hubble Deep Field galaxies (NASA/ESA)",
    "retina.jpg": "human retina fundus photograph",
    "motorcycle_left.png": "motorcycle in a workshop, left stereo view",
    "camera.png": "cameraman with a tripod, black and white photo",
    "coins.png": "greek coins on a dark background",
    "moon.png": "surface of the moon, craters",
    "brick.png": "red brick wall texture",
    "grass.png": "green grass close up",
}
COLORS = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "teal", "pink"]
SHAPES = ["circle", "square", "triangle", "stripe"]
SPECIAL_CAPTIONS = [
    "Café au lait ☕ — naïve façade, 東京タワー, emoji 🚀🌍✨",
    "  leading and trailing spaces  ",
    "line one\nline two\ttabbed",
    "long caption " + "with many repeated words " * 120,
    "",
]


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _generated(rng: random.Random, i: int) -> tuple[Image.Image, str]:
    w, h = rng.choice([(320, 240), (640, 480), (480, 640), (512, 512), (800, 600), (150, 120), (900, 200)])
    c1, c2 = rng.sample(COLORS, 2)
    shape = rng.choice(SHAPES)
    img = Image.new("RGB", (w, h), c1)
    draw = ImageDraw.Draw(img)
    x0, y0 = rng.randint(0, w // 2), rng.randint(0, h // 2)
    box = (x0, y0, x0 + w // 3, y0 + h // 3)
    if shape == "circle":
        draw.ellipse(box, fill=c2)
    elif shape == "square":
        draw.rectangle(box, fill=c2)
    elif shape == "triangle":
        draw.polygon([(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], fill=c2)
    else:
        for x in range(0, w, 20):
            draw.rectangle((x, 0, x + 8, h), fill=c2)
    return img, f"a {c2} {shape} on a {c1} background, generated image {i}"


def build_demo_sample(folder: Path, base_url: str, n_generated: int = 160, seed: int = 0) -> Path:
    """Write images under `folder/www` and `folder/laion_demo.parquet` (LAION columns); return the parquet path."""
    from skimage import data as skdata

    rng = random.Random(seed)
    www = Path(folder) / "www"
    for sub in ("img", "optout", "bad"):
        (www / sub).mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def add(url, text, w=None, h=None, sim=None):
        rows.append({"SAMPLE_ID": len(rows), "URL": url, "TEXT": text, "WIDTH": w, "HEIGHT": h,
                     "similarity": sim if sim is not None else round(rng.uniform(0.2, 0.4), 4),
                     "LICENSE": "?", "NSFW": "UNLIKELY", "punsafe": round(rng.uniform(0, 0.2), 4),
                     "pwatermark": round(rng.uniform(0, 0.6), 4)})

    skdir = Path(skdata.__file__).parent
    for name, caption in PHOTOS.items():
        photo = Image.open(skdir / name).convert("RGB")
        for j, scale in enumerate((1.0, 0.75, 0.5)):
            img = photo.resize((max(1, int(photo.width * scale)), max(1, int(photo.height * scale))))
            (www / "img" / f"photo_{Path(name).stem}_{j}.jpg").write_bytes(_jpeg(img))
            add(f"{base_url}/img/photo_{Path(name).stem}_{j}.jpg", caption, img.width, img.height)
    for i in range(n_generated):
        img, caption = _generated(rng, i)
        if i < len(SPECIAL_CAPTIONS):
            caption = SPECIAL_CAPTIONS[i]
        (www / "img" / f"gen_{i:04d}.jpg").write_bytes(_jpeg(img))
        add(f"{base_url}/img/gen_{i:04d}.jpg", caption, img.width, img.height)
    good = [r["URL"] for r in rows]
    for i in range(10):
        add(f"{base_url}/img/missing_{i}.jpg", f"a picture that is gone {i}")
    for i in range(6):
        (www / "bad" / f"page_{i}.jpg").write_text("<html><body>not an image</body></html>")
        add(f"{base_url}/bad/page_{i}.jpg", f"an html page pretending to be a jpeg {i}")
    for i in range(6):
        data = _jpeg(_generated(rng, 1000 + i)[0])
        (www / "bad" / f"truncated_{i}.jpg").write_bytes(data[: len(data) // 3])
        add(f"{base_url}/bad/truncated_{i}.jpg", f"a truncated jpeg {i}")
    for i in range(4):
        (www / "optout" / f"private_{i}.jpg").write_bytes(_jpeg(_generated(rng, 2000 + i)[0]))
        add(f"{base_url}/optout/private_{i}.jpg", f"an image whose host opted out of AI training {i}")
    for url in rng.sample(good, 8):
        add(url, "a duplicate of an earlier row's URL")
    for url in ("", "   ", None, None):
        add(url, "a row without a URL")
    for url in ("ftp://example.invalid/a.jpg", "data:image/png;base64,AAAA", "not a url"):
        add(url, "a row with a URL that is not http(s)")
    path = Path(folder) / "laion_demo.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path
