"""pixelscrub: remove burned-in patient information from DICOM pixels, then
de-identify the header.

The Python API mirrors the CLI::

    from pixelscrub import scrub_file, scrub_dataset, inspect_file, ScrubOptions
    audit = scrub_file("in.dcm", "out.dcm")                 # path in, path out
    clean_ds, audit = scrub_dataset(ds, ScrubOptions(mode="all-text"))
"""
__version__ = "0.1.0"

__all__ = ["scrub_file", "scrub_dataset", "inspect_file", "ScrubOptions", "UserRegion",
           "__version__"]

from .options import ScrubOptions, UserRegion


def __getattr__(name):
    # The pipeline pulls in OpenCV and Tesseract; import it only when used.
    if name in ("scrub_file", "scrub_dataset", "inspect_file"):
        from . import pipeline
        return getattr(pipeline, name)
    raise AttributeError(name)
