"""Simulated physician (oracle protocol): the numbers of the protocol, sides, seeding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from yoho.annotation import validate_annotation
from yoho.physician import OracleOptions, field_of_view, simulate_annotation
from yoho.synthetic import synthetic_endoscopy


def disc_image(size=200, radius=30, centre=(100, 100)):
    image = np.full((size, size, 3), 150, np.uint8)
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, centre, radius, 1, -1)
    return image, mask.astype(bool)


def test_protocol_on_a_disc():
    image, mask = disc_image()
    ann = simulate_annotation(image, mask)
    d = 2 * np.sqrt(mask.sum() / np.pi)
    margin = max(8, 0.15 * d)
    assert ann.protocol["margin_px"] == pytest.approx(margin, abs=0.01)
    assert ann.protocol["name"] == "oracle" and ann.protocol["seed"] == 0
    assert not ann.complement
    # First circle at the inscribed-disc centre, radius capped at 0.25·d.
    first = ann.lesion_circles[0]
    assert (first.x, first.y) == (100, 100)
    assert first.r == int(0.25 * d)
    assert len(ann.lesion_circles) == 3
    assert all(c.r >= 4 for c in ann.lesion_circles)
    # Later circles sit outside the suppressed disc of twice the first radius.
    for c in ann.lesion_circles[1:]:
        assert np.hypot(c.x - first.x, c.y - first.y) > 2 * first.r
    # ROI: the dilated mask, simplified: it covers the lesion and about the margin around it.
    roi = ann.roi_mask()
    assert roi[mask].mean() > 0.99
    expected = np.pi * (30 + margin) ** 2
    assert roi.sum() == pytest.approx(expected, rel=0.1)
    # Normal circles: median lesion radius, outside the mask dilated by 2m.
    median = np.median([c.r for c in ann.lesion_circles])
    assert len(ann.normal_circles) == 3
    for c in ann.normal_circles:
        assert c.r == median
        assert np.hypot(c.x - 100, c.y - 100) >= 30 + 2 * margin + c.r - 1


def test_complement_when_lesion_covers_most_of_the_field_of_view():
    image, mask = disc_image(size=200, radius=85)
    ann = simulate_annotation(image, mask)
    assert ann.complement
    roi = validate_annotation(ann, image.shape)
    # The ROI holds all the normal tissue and reaches the margin into the lesion.
    assert roi[~mask].all()
    for c in ann.lesion_circles:
        assert not roi[int(c.y), int(c.x)]
    for c in ann.normal_circles:
        assert roi[int(c.y), int(c.x)] and not mask[int(c.y), int(c.x)]
    assert ann.normal_circles, "complement needs normal circles: they are the learnt class"


def test_seed_changes_only_the_normal_circles():
    image, mask = synthetic_endoscopy(160, seed=1)
    a = simulate_annotation(image, mask, OracleOptions(seed=0))
    b = simulate_annotation(image, mask, OracleOptions(seed=0))
    c = simulate_annotation(image, mask, OracleOptions(seed=5))
    assert a.normal_circles == b.normal_circles
    assert a.normal_circles != c.normal_circles
    assert a.lesion_circles == c.lesion_circles


def test_options_are_recorded_and_respected():
    image, mask = disc_image()
    ann = simulate_annotation(
        image, mask, OracleOptions(margin_factor=0.5, lesion_circles=1, normal_circles=0)
    )
    assert len(ann.lesion_circles) == 1 and ann.normal_circles == []
    assert ann.protocol["margin_factor"] == 0.5 and ann.protocol["lesion_circles"] == 1


def test_normal_circles_stay_in_the_field_of_view():
    image, mask = synthetic_endoscopy(160, seed=2)
    ann = simulate_annotation(image, mask)
    fov = field_of_view(image)
    yy, xx = np.mgrid[0:160, 0:160]
    for c in ann.normal_circles:
        disc = (xx - c.x) ** 2 + (yy - c.y) ** 2 <= c.r**2
        assert fov[disc].all()


def test_bad_inputs():
    image, mask = disc_image()
    with pytest.raises(ValueError, match="empty"):
        simulate_annotation(image, np.zeros_like(mask))
    with pytest.raises(ValueError, match="mask is 100x200"):
        simulate_annotation(image, mask[:, :100])
