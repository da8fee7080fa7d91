"""Input checks of the web tool: ids, names, paths, image decoding, hosts (no server here)."""

from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from yoho.web.errors import BadRequest, TooLarge, UnsupportedMedia
from yoho.web.guard import _host_name
from yoho.web.images import decode_image, list_data_images, pixel_id
from yoho.web.safety import (
    check_display_name,
    check_image_id,
    check_job_id,
    resolve_relative,
)
from yoho.web.segment_job import contour_layer
from yoho.web.server import allowed_hosts_for, is_loopback


def _encode(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "value",
    ["", "abc", "../" + "a" * 21, "A" * 24, "a" * 23, "a" * 25, "a" * 23 + "/", "0" * 23 + "\n"],
)
def test_bad_image_ids_are_refused(value):
    with pytest.raises(BadRequest, match="invalid image id"):
        check_image_id(value)


def test_good_ids_pass():
    assert check_image_id("0123456789abcdef01234567") == "0123456789abcdef01234567"
    assert check_job_id("0123456789abcdef") == "0123456789abcdef"
    with pytest.raises(BadRequest, match="invalid job id"):
        check_job_id("0123456789abcdef0")


@pytest.mark.parametrize(
    "name", ["../evil.png", "a/b.png", "a\\b.png", "..", ".", "..png", "x\x00.png", "x\n.png"]
)
def test_path_like_file_names_are_refused(name):
    with pytest.raises(BadRequest):
        check_display_name(name)


def test_plain_file_names_are_kept():
    assert check_display_name("Patient 12 – endoscopy.JPG") == "Patient 12 – endoscopy.JPG"
    assert check_display_name(None) == "image"
    with pytest.raises(BadRequest, match="longer than"):
        check_display_name("a" * 200 + ".png")


def test_relative_paths_stay_inside_the_data_folder(tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "b.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.png", data / "link.png")
    os.symlink(data / "sub" / "b.png", data / "inner.png")
    assert resolve_relative(data, "sub/b.png") == (data / "sub" / "b.png").resolve()
    assert resolve_relative(data, "inner.png") == (data / "sub" / "b.png").resolve()
    for bad in [
        "../secret.png",
        "sub/../../secret.png",
        str(tmp_path / "secret.png"),
        "/etc/passwd",
        "..\\secret.png",
        "sub/b.png\x00.jpg",
        "",
        "link.png",  # a symlink leading out of the folder
    ]:
        with pytest.raises(BadRequest):
            resolve_relative(data, bad)


def test_decode_accepts_common_formats_with_identical_pixels(rgb):
    for fmt in ["PNG", "BMP", "TIFF", "WEBP"]:
        data = _encode(rgb, fmt) if fmt != "WEBP" else _webp_lossless(rgb)
        out = decode_image(data, max_pixels=10_000, name=f"x.{fmt}")
        assert out.shape == rgb.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, rgb)
    jpeg = decode_image(_encode(rgb, "JPEG"), max_pixels=10_000)
    assert jpeg.shape == rgb.shape


def _webp_lossless(rgb):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "WEBP", lossless=True)
    return buffer.getvalue()


def test_decode_refuses_non_images_and_corrupt_files(rgb):
    with pytest.raises(UnsupportedMedia, match="notes.txt: not an image"):
        decode_image(b"hello, this is text\n" * 10, 10_000, "notes.txt")
    with pytest.raises(BadRequest, match="empty"):
        decode_image(b"", 10_000)
    png = _encode(rgb, "PNG")
    with pytest.raises(UnsupportedMedia, match="corrupt"):
        decode_image(png[: len(png) // 2], 10_000, "half.png")
    gif = io.BytesIO()
    Image.fromarray(rgb).save(gif, "GIF")
    with pytest.raises(UnsupportedMedia, match="GIF images are not accepted"):
        decode_image(gif.getvalue(), 10_000, "anim.gif")


@pytest.mark.parametrize("side", [5000, 20000])
def test_decompression_bomb_is_refused_from_the_header(side):
    # side x side zeros: 25 MP or 400 MP of pixels (the latter beyond Pillow's own bomb limit)
    # in a file of at most a few hundred kB.
    ok, bomb = cv2.imencode(".png", np.zeros((side, side), np.uint8))
    assert ok and len(bomb) < 1_000_000
    with pytest.raises(TooLarge, match="above the limit of 1,000,000 pixels"):
        decode_image(bomb.tobytes(), max_pixels=1_000_000, name="bomb.png")


def test_tiny_images_are_refused():
    with pytest.raises(BadRequest, match="too small"):
        decode_image(_encode(np.zeros((4, 4, 3), np.uint8), "PNG"), 10_000)


def test_pixel_id_depends_on_pixels_only(rgb):
    a = decode_image(_encode(rgb, "PNG"), 10_000)
    b = decode_image(_encode(rgb, "BMP"), 10_000)
    assert pixel_id(a) == pixel_id(b)
    changed = a.copy()
    changed[0, 0, 0] ^= 1
    assert pixel_id(changed) != pixel_id(a)
    assert len(pixel_id(a)) == 24


def test_data_listing_skips_hidden_symlinks_and_non_images(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for rel in ["a.png", "sub/b.JPG", ".hidden/c.png", "notes.txt", ".d.png"]:
        (tmp_path / rel).write_bytes(b"x")
    os.symlink(tmp_path / "a.png", tmp_path / "link.png")
    assert [e["path"] for e in list_data_images(tmp_path)] == ["a.png", "sub/b.JPG"]


def test_contour_layer_outlines_the_mask():
    mask = np.zeros((50, 80), bool)
    mask[10:40, 20:60] = True
    layer = contour_layer(mask, thickness=1)
    assert layer.shape == (50, 80, 4)
    alpha = layer[..., 3]
    assert alpha[0, 0] == 0 and alpha[25, 70] == 0  # outside: transparent
    assert alpha[25, 40] == 70  # inside: light tint
    assert alpha[10, 40] > 200 and alpha[25, 20] > 200  # on the border: the (anti-aliased) line


def test_host_rules():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert allowed_hosts_for("0.0.0.0") is None
    assert allowed_hosts_for("127.0.0.1") == ("127.0.0.1", "localhost", "[::1]")
    assert allowed_hosts_for("192.168.1.5")[-1] == "192.168.1.5"
    assert allowed_hosts_for("::1") == ("127.0.0.1", "localhost", "[::1]")
    assert _host_name("127.0.0.1:8000") == "127.0.0.1"
    assert _host_name("[::1]:8000") == "[::1]"
    assert _host_name("LocalHost") == "localhost"
