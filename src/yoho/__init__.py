"""YOHO ("You Only Have One"): early oesophageal cancer segmentation from a single image.

A physician marks an ROI and a few circles; a geometry-based renderer builds a training set from
that one image; an edge-enhanced UNet over-fits on it and segments the lesion.
"""

__version__ = "0.1.0"
