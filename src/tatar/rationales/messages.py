"""Chat-completions request bodies for the teacher and the judge, images sent inline (base64).

JPEG, PNG, WebP and GIF files are sent byte for byte; other formats (BMP, TIFF, ...) are
re-encoded as PNG because hosted APIs accept only those four. With `image_max_pixels` set, larger
images are downscaled first (fewer image tokens, smaller requests).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from pathlib import Path
from typing import Any

from PIL import Image

from tatar.rationales.config import Endpoint, RuleConfig
from tatar.rationales.prompts import judge_prompt, teacher_prompt
from tatar.rationales.records import Item
from tatar.rationales.rules import LINKING_RE, aspects_touched

_WEB_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def image_data_url(path: str | Path, max_pixels: int | None = None) -> str:
    """The image as a `data:` URL; raises OSError/ValueError when it cannot be read."""
    path = Path(path)
    raw = path.read_bytes()
    with Image.open(io.BytesIO(raw)) as im:
        fmt = im.format or ""
        too_big = max_pixels is not None and im.width * im.height > max_pixels
        if fmt in _WEB_FORMATS and not too_big:
            return f"data:{_WEB_FORMATS[fmt]};base64,{base64.b64encode(raw).decode('ascii')}"
        im.load()
        if im.mode == "F" or im.mode.startswith("I"):
            # 16-bit or float grey: the pixels the scored model sees (`load_image`), not a
            # 16-bit or float PNG a teacher's API may refuse or read otherwise.
            from tatar.generation import load_image

            im = load_image(path)
        if too_big:
            s = math.sqrt(max_pixels / (im.width * im.height))
            size = (max(1, int(im.width * s)), max(1, int(im.height * s)))
            im = im.resize(size, Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if fmt == "JPEG" and im.mode in ("RGB", "L"):
            im.save(buf, format="JPEG", quality=95)
            mime = "image/jpeg"
        else:
            im.save(buf, format="PNG")
            mime = "image/png"
    return f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


def request_seed(base_seed: int, item_id: str) -> int:
    """Per-record sampling seed: reproducible whatever the order the records are sent in."""
    h = int.from_bytes(hashlib.sha256(item_id.encode("utf-8")).digest()[:4], "big")
    return (base_seed + h) % (2**31 - 1)


def _body(endpoint: Endpoint, item: Item, system: str, user: str) -> dict[str, Any]:
    if endpoint.vision:
        content: Any = [
            {
                "type": "image_url",
                "image_url": {"url": image_data_url(item.image_path, endpoint.image_max_pixels)},
            },
            {"type": "text", "text": user},
        ]
    else:
        content = user
    body: dict[str, Any] = {
        "model": endpoint.model,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": content},
        ],
        **endpoint.sampling,
        **endpoint.extra_body,
    }
    if endpoint.seed is not None:
        body["seed"] = request_seed(endpoint.seed, item.id)
    return body


def teacher_request(item: Item, endpoint: Endpoint, rules: RuleConfig) -> dict[str, Any]:
    """The teacher request for one record (reads the image when the teacher sees images)."""
    system, user = teacher_prompt(
        item.task,
        item.target,
        words=rules.words(item.task),
        min_aspects=rules.iaa_min_aspects,
        vision=endpoint.vision,
        attributes=item.attributes,
    )
    return _body(endpoint, item, system, user)


def judge_request(item: Item, endpoint: Endpoint, rules: RuleConfig) -> dict[str, Any]:
    """The judge request for one rationale record."""
    rationale = (item.rationale or "").strip()
    system, user = judge_prompt(
        item.task,
        item.target,
        rationale,
        vision=endpoint.vision,
        min_aspects=rules.iaa_min_aspects,
        aspects_touched=len(aspects_touched(rationale)),
        has_linking=LINKING_RE.search(rationale) is not None,
        attributes=item.attributes,
    )
    return _body(endpoint, item, system, user)
