"""The de-identification options: the PS3.15 profile options plus pseudonym inputs."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Optional

from .profile import OPTION_KEYS

__all__ = ["SafePrivate", "DEFAULT_SAFE_PRIVATE", "DeidOptions"]


@dataclass(frozen=True, order=True)
class SafePrivate:
    """A private attribute known to carry no identity: its creator, group and the
    low byte of its element (the block offset moves from file to file)."""

    creator: str
    group: int
    element: int

    def __post_init__(self):
        if self.group % 2 == 0 or not 0 <= self.element <= 0xFF:
            raise ValueError("a safe private attribute needs an odd group and an element byte 0x00-0xFF")


#: Well-known vendor acquisition parameters that carry no identity and that
#: research pipelines need (diffusion b-values and directions), in the spirit of
#: PS3.15 Table E.3.10-1; extend or replace it with ``safe_private`` in a config.
DEFAULT_SAFE_PRIVATE: tuple[SafePrivate, ...] = (
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0C),   # B_value
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0D),   # DiffusionDirectionality
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0E),   # DiffusionGradientDirection
    SafePrivate("GEMS_PARM_01", 0x0043, 0x39),        # Slop_int_6..9 (b-value)
    SafePrivate("Philips Imaging DD 001", 0x2001, 0x03),  # Diffusion B-Factor
)


@dataclass(frozen=True)
class DeidOptions:
    """What the header de-identification keeps, cleans and writes.

    The boolean fields are the PS3.15 E.3 options; ``retain_long_full_dates``
    and ``retain_long_modified_dates`` exclude each other.  ``pseudonym_csv``
    maps original PatientIDs to research IDs (a missing ID is an error);
    ``reid_map`` is where the pseudonym -> original map is appended (never
    inside the output folder).
    """

    retain_long_full_dates: bool = False
    retain_long_modified_dates: bool = False
    retain_patient_chars: bool = False
    retain_device_id: bool = False
    retain_institution_id: bool = False
    retain_uids: bool = False
    retain_safe_private: bool = False
    safe_private: tuple[SafePrivate, ...] = DEFAULT_SAFE_PRIVATE
    clean_descriptors: bool = False
    clean_structured_content: bool = False
    clean_graphics: bool = False
    pseudonym_csv: Optional[str] = None
    reid_map: Optional[str] = None
    pseudonym_prefix: str = "PS-"

    def __post_init__(self):
        if self.retain_long_full_dates and self.retain_long_modified_dates:
            raise ValueError("choose one of retain_long_full_dates and retain_long_modified_dates")
        if not isinstance(self.safe_private, tuple):
            object.__setattr__(self, "safe_private", tuple(self.safe_private))
        if not self.pseudonym_prefix or len(self.pseudonym_prefix) > 16:
            raise ValueError("pseudonym_prefix must be 1 to 16 characters")

    @property
    def columns(self) -> frozenset[str]:
        """The Table E.1-1 option columns in force."""
        return frozenset(col for name, col in OPTION_KEYS.items() if getattr(self, name))

    def selected(self) -> dict[str, bool]:
        """The option switches (no paths, which may name people) for reports."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.type in ("bool", bool)}
