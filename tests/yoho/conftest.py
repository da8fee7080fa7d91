"""Small shared inputs for the YOHO tests: a synthetic image, its mask and annotation."""

from __future__ import annotations

import pytest

from yoho.physician import simulate_annotation
from yoho.synthetic import synthetic_endoscopy


@pytest.fixture(scope="session")
def synthetic():
    image, mask = synthetic_endoscopy(size=128, seed=3)
    return image, mask


@pytest.fixture(scope="session")
def synthetic_annotation(synthetic):
    image, mask = synthetic
    return simulate_annotation(image, mask)
