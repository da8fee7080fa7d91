"""A synthetic endoscopy-like image with a lesion of known extent, for tests and the demo.

Reddish mucosa with smooth illumination changes, fine texture and a few vessels; a paler,
granular lesion of irregular outline; specular highlights on both; a vignette and the black
octagonal frame of an endoscope. The ground truth is the lesion polygon inside the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from yoho.io import write_bytes

__all__ = ["synthetic_endoscopy", "write_dicom"]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    field = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return field / (field.std() + 1e-6)


def _blob(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    centre = size / 2 + rng.uniform(-0.12, 0.12, 2) * size
    radius = scale * size / 2
    angles = np.linspace(0, 2 * np.pi, 180, endpoint=False)
    wobble = np.zeros_like(angles)
    for k in range(2, 6):  # a few low harmonics give an irregular but compact outline
        wobble += rng.uniform(0.03, 0.12) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    rr = radius * (1 + wobble)
    points = np.stack([centre[0] + rr * np.cos(angles), centre[1] + rr * np.sin(angles)], 1)
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def synthetic_endoscopy(
    size: int = 256, seed: int = 0, lesion_scale: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """Make one synthetic image and its lesion mask.

    Parameters
    ----------
    size : side of the square image in pixels (>= 32).
    seed : the same seed gives the same image.
    lesion_scale : lesion radius as a fraction of half the image side.

    Returns
    -------
    (image, mask): (size, size, 3) uint8 RGB and (size, size) bool.
    """
    if size < 32:
        raise ValueError(f"synthetic image size must be at least 32, got {size}")
    rng = np.random.default_rng(seed)
    shape = (size, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)

    mucosa = np.array([196, 104, 92], np.float32) + rng.uniform(-10, 10, 3)
    image = np.broadcast_to(mucosa, (size, size, 3)).copy()
    image += 18 * _smooth_noise(rng, shape, size / 10)[..., None]
    image += 6 * _smooth_noise(rng, shape, 1.2)[..., None] * np.array([1.0, 0.8, 0.8])

    vessels = np.zeros(shape, np.float32)
    for _ in range(6):
        point = rng.uniform(0, size, 2)
        heading = rng.uniform(0, 2 * np.pi)
        path = [point.copy()]
        for _ in range(40):
            heading += rng.normal(0, 0.35)
            point = point + size / 60 * np.array([np.cos(heading), np.sin(heading)])
            path.append(point.copy())
        cv2.polylines(vessels, [np.round(path).astype(np.int32)], False, 1.0, 1)
    vessels = cv2.GaussianBlur(vessels, (0, 0), 0.8)
    image -= vessels[..., None] * np.array([30, 45, 40], np.float32)

    mask = _blob(rng, size, lesion_scale)
    lesion_colour = np.array([212, 146, 128], np.float32) + rng.uniform(-8, 8, 3)
    granules = 18 * _smooth_noise(rng, shape, 1.5)
    lesion = lesion_colour + granules[..., None] * np.array([1.0, 1.1, 1.1])
    lesion += 10 * _smooth_noise(rng, shape, size / 12)[..., None]
    # A slightly soft edge, as real lesions have; the ground truth stays the polygon.
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.0)[..., None]
    image = image * (1 - alpha) + lesion * alpha

    for _ in range(5):
        cy, cx = rng.uniform(0.15, 0.85, 2) * size
        axes = rng.uniform(0.005, 0.02, 2) * size
        spot = ((xx - cx) / axes[0]) ** 2 + ((yy - cy) / axes[1]) ** 2 <= 1
        image[spot] = 0.3 * image[spot] + 0.7 * 250

    rad = np.hypot(xx - size / 2, yy - size / 2) / (size / 2)
    image *= np.clip(1.05 - 0.35 * rad**2, 0.4, 1.0)[..., None]
    inset = int(0.14 * size)
    octagon = np.array(
        [
            [inset, 0],
            [size - 1 - inset, 0],
            [size - 1, inset],
            [size - 1, size - 1 - inset],
            [size - 1 - inset, size - 1],
            [inset, size - 1],
            [0, size - 1 - inset],
            [0, inset],
        ],
        np.int32,
    )
    frame = np.zeros(shape, np.uint8)
    cv2.fillPoly(frame, [octagon], 1)
    frame = frame.astype(bool)
    image[~frame] = rng.uniform(0, 4)
    return np.clip(image, 0, 255).astype(np.uint8), mask & frame


def write_dicom(path, image: np.ndarray, photometric: str = "RGB"):
    """Save `image` as a single-frame DICOM file (VL Endoscopic Image) of a phantom patient,
    for tests and the demo of DICOM input and DICOM-SEG output; returns the dataset (pydicom)."""
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.1"  # VL Endoscopic Image
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientID, ds.PatientName, ds.PatientBirthDate, ds.PatientSex = "P1", "Test^Phantom", "", "O"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20261128", "120000", ""
    ds.ReferringPhysicianName, ds.StudyID, ds.Modality = "", "1", "ES"
    ds.SeriesNumber, ds.InstanceNumber, ds.Manufacturer = 1, 1, "synthetic"
    ds.Rows, ds.Columns = image.shape[:2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if photometric == "RGB":
        ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
        ds.PixelData = np.ascontiguousarray(image).tobytes()
    else:
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = np.ascontiguousarray(image[:, :, 0]).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    write_bytes(path, buffer.getvalue())  # atomic: a crash leaves no half-written file
    return ds
