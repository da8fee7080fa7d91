"""The rendered training set as a torch Dataset: every sample made on the fly, seeded per index.

Sample i is drawn with `np.random.default_rng((seed, i))`, so it is the same whatever the
order, the worker or the process; nothing is written to disk. The last index is the original
image with its clicked discs (as in the authors' set of 1599 composites + the original); with
`RenderOptions.original_views` > 1 the indices before it are flipped/jittered views of it.
The image is first letterboxed to the network input size and everything is rendered at that
size: the same geometry as rendering at full size and shrinking, far cheaper for big images.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from yoho.annotation import Annotation, validate_annotation
from yoho.letterbox import IGNORE, PAD_GREY, Letterbox
from yoho.physician import field_of_view
from yoho.render.bank import PatchBank, build_outside_patches, build_patch_bank
from yoho.render.composite import RenderOptions, augment, render_composite, render_original

__all__ = ["RenderedDataset", "RenderedSample"]

_BANK_STREAM = 2**40  # seed stream of the patch bank, apart from every sample index


class RenderedSample(dict):
    """`image` float32 (3, S, S) in [0, 1]; `seg`, `edge` uint8 (S, S) in {0, 1, 255}."""


class RenderedDataset(Dataset):
    """Geometry-based rendering of one annotated image.

    Parameters
    ----------
    image : (H, W, 3) uint8 RGB, the original image.
    annotation : its annotation (validated here against the image).
    size : side of the square network input.
    length : number of samples; the last one is the original image.
    seed : seeds the patch bank and every sample.
    options : rendering switches (`RenderOptions`).
    """

    def __init__(
        self,
        image: np.ndarray,
        annotation: Annotation,
        size: int = 256,
        length: int = 1600,
        seed: int = 0,
        options: RenderOptions | None = None,
    ) -> None:
        if length < 1:
            raise ValueError(f"dataset length must be at least 1, got {length}")
        validate_annotation(annotation, image.shape)
        self.options = options or RenderOptions()
        self.size, self.length, self.seed = int(size), int(length), int(seed)
        views = min(max(1, self.options.original_views), self.length)
        self.first_original = self.length - views
        self.letterbox = Letterbox(image.shape[0], image.shape[1], self.size)
        self.image = self.letterbox.resize_image(image)
        ih, iw = self.letterbox.inner
        self.annotation = annotation.scaled(iw, ih)
        self.complement = annotation.complement
        self.roi = self.annotation.roi_mask()
        self.fov = field_of_view(self.image)
        self.bank: PatchBank = build_patch_bank(
            self.image,
            self.annotation,
            np.random.default_rng((self.seed, _BANK_STREAM)),
            ladder_step_fraction=self.options.ladder_step_fraction,
            max_zoom=self.options.max_zoom,
        )
        if self.options.outside_patches > 0:
            radii = sorted(
                {
                    d.radius
                    for c in self.bank.entries[: len(annotation.target_circles)]
                    for s in c
                    for d in s
                }
            )
            self.bank.outside = build_outside_patches(
                self.image,
                ~self.roi & self.fov,
                radii,
                np.random.default_rng((self.seed, _BANK_STREAM + 1)),
                max_zoom=self.options.max_zoom,
            )

    def __len__(self) -> int:
        return self.length

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """Sample `index` at working size, unpadded: (image, seg, edge, placements)."""
        if not 0 <= index < self.length:
            raise IndexError(f"sample {index} out of range 0..{self.length - 1}")
        rng = np.random.default_rng((self.seed, index))
        if index >= self.first_original:
            img, seg, edge = render_original(
                self.image, self.roi, self.fov, self.bank, self.complement, self.options
            )
            if index != self.length - 1:  # the last index is the untouched original
                img, seg, edge = augment(img, seg, edge, rng, self.options)
            return img, seg, edge, []
        return render_composite(
            self.image, self.roi, self.fov, self.bank, self.complement, rng, self.options
        )

    def __getitem__(self, index: int) -> RenderedSample:
        img, seg, edge, _ = self.render(int(index))
        img = self.letterbox.pad(img, PAD_GREY)
        seg = self.letterbox.pad(seg, IGNORE)
        edge = self.letterbox.pad(edge, IGNORE)
        return RenderedSample(
            image=torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255.0,
            seg=torch.from_numpy(seg),
            edge=torch.from_numpy(edge),
        )
