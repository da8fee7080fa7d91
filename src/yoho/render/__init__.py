"""Geometry-based rendering: a training set made from one annotated image."""

from yoho.render.bank import PatchBank, build_patch_bank, radius_ladder
from yoho.render.composite import RenderOptions, render_composite, render_original
from yoho.render.dataset import RenderedDataset

__all__ = [
    "PatchBank",
    "RenderOptions",
    "RenderedDataset",
    "build_patch_bank",
    "radius_ladder",
    "render_composite",
    "render_original",
]
