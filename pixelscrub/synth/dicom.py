"""Write a synthetic scene as a DICOM file in the transfer syntax its spec asks for.

The header is consistent with the burned-in text (``DOE^JOHN`` in the header, some
printed form in the pixels), UIDs are derived from the seed so a set is reproducible,
and the SOP class matches the modality (US, US multi-frame, Secondary Capture, DX).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, generate_uid

from .identity import Identity
from .scenes import JPEG_BASELINE, SceneSpec

__all__ = ["make_dataset", "write_dicom", "header_phi"]

#: Default quality of the JPEG baseline files: typical of scanners, lossy on edges.
JPEG_QUALITY = 90


def _uid(seed: int, index: int, what: str) -> UID:
    return generate_uid(entropy_srcs=["pixelscrub-synth", str(seed), str(index), what])


def header_phi(ds: Dataset) -> dict[str, str]:
    """The identifying header values a scrubbed output must not keep (non-empty ones)."""
    keys = ["PatientName", "PatientID", "PatientBirthDate", "AccessionNumber",
            "InstitutionName", "ReferringPhysicianName", "OperatorsName", "StudyDate",
            "StudyTime", "AcquisitionDateTime"]
    out = {}
    for k in keys:
        v = ds.get(k)
        if v is not None and str(v).strip():
            out[k] = str(v)
    return out


def make_dataset(pixels: np.ndarray, spec: SceneSpec, ident: Identity, *, seed: int,
                 index: int) -> Dataset:
    """A complete dataset holding ``pixels`` (frames, rows, columns, samples), uncompressed."""
    frames, rows, cols, samples = pixels.shape
    ds = Dataset()
    meta = FileMetaDataset()
    sop = _uid(seed, index, "sop")
    meta.MediaStorageSOPClassUID = UID(spec.sop_class)
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    meta.ImplementationVersionName = "PIXELSCRUB_SYN"
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = UID(spec.sop_class)
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = _uid(seed, index, "study")
    ds.SeriesInstanceUID = _uid(seed, index, "series")
    ds.FrameOfReferenceUID = _uid(seed, index, "for")
    ds.Modality = spec.modality
    ds.Manufacturer = spec.manufacturer
    ds.ManufacturerModelName = spec.model
    ds.StudyDescription = spec.description
    ds.SeriesDescription = spec.description
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.PatientSex = ident.sex
    if spec.stripped:
        ds.PatientName = ""
        ds.PatientID = ""
        ds.PatientBirthDate = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "header only (upstream tool)"
        ds.StudyDate = ""
        ds.StudyTime = ""
        ds.AccessionNumber = ""
        ds.ReferringPhysicianName = ""
    else:
        ds.PatientName = ident.dicom_name
        ds.PatientID = ident.patient_id
        ds.PatientBirthDate = f"{ident.birth_date:%Y%m%d}"
        ds.StudyDate = f"{ident.study_date:%Y%m%d}"
        ds.StudyTime = f"{ident.study_time:%H%M%S}"
        ds.SeriesDate = ds.StudyDate
        ds.ContentDate = ds.StudyDate
        ds.ContentTime = ds.StudyTime
        ds.AccessionNumber = ident.accession
        ds.InstitutionName = ident.institution
        ds.ReferringPhysicianName = ident.referring
        ds.OperatorsName = ident.operator
        if spec.frame_time_ms:
            start = dt.datetime.combine(ident.study_date, ident.study_time)
            ds.AcquisitionDateTime = f"{start:%Y%m%d%H%M%S}"
    ds.StudyID = "1"
    ds.BurnedInAnnotation = spec.burned_in
    ds.ConversionType = "WSD" if spec.sop_class.endswith(".7") else None
    if ds.ConversionType is None:
        del ds.ConversionType
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else spec.photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    bits = 8 if pixels.dtype == np.uint8 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = spec.bits_stored if bits == 16 else 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameTime = spec.frame_time_ms or 40.0
        ds.FrameIncrementPointer = pydicom.tag.Tag("FrameTime")
        ds.CineRate = int(round(1000.0 / ds.FrameTime))
    if spec.window:
        ds.WindowCenter, ds.WindowWidth = spec.window
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    if spec.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ViewPosition = "PA"
        ds.BodyPartExamined = "CHEST"
        ds.ImagerPixelSpacing = [0.3, 0.3]
    else:
        ds.ImageType = ["ORIGINAL", "PRIMARY"] if spec.modality == "US" else ["DERIVED", "SECONDARY"]
    arr = pixels[..., 0] if samples == 1 else pixels
    arr = arr[0] if frames == 1 else arr
    ds.PixelData = np.ascontiguousarray(arr).tobytes()
    return ds


def _jpeg_frames(pixels: np.ndarray, quality: int = JPEG_QUALITY) -> list[bytes]:
    out = []
    for frame in pixels:
        if frame.shape[-1] == 3:
            img = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
            params = [cv2.IMWRITE_JPEG_QUALITY, quality,
                      cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
        else:
            img = frame[..., 0]
            params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        ok, buf = cv2.imencode(".jpg", img, params)
        if not ok:
            raise RuntimeError("OpenCV could not encode a JPEG frame")
        out.append(buf.tobytes())
    return out


def write_dicom(path: Path, pixels: np.ndarray, spec: SceneSpec, ident: Identity, *,
                seed: int, index: int) -> Dataset:
    """Encode and write the file; returns the dataset as written."""
    ds = make_dataset(pixels, spec, ident, seed=seed, index=index)
    ts = UID(spec.transfer_syntax)
    if ts == JPEG_BASELINE:
        ds.PixelData = encapsulate(_jpeg_frames(pixels, spec.jpeg_quality))
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = ts
        if pixels.shape[-1] == 3:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = round(pixels.nbytes / max(1, len(ds.PixelData)), 2)
        ds.LossyImageCompressionMethod = "ISO_10918_1"
    elif ts != pydicom.uid.ExplicitVRLittleEndian:
        arr = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        arr = arr[0] if arr.shape[0] == 1 else arr
        ds.compress(ts, np.ascontiguousarray(arr), generate_instance_uid=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds
