"""The gateway's C-STORE SCU: send clean instances on, with retry and backoff.

A connection problem (no answer, association refused or aborted) is transient:
the instance stays in the spool and is tried again after a growing pause.  An
instance the destination answers with a failure status is tried a few more
times, then quarantined with that status as the reason.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pydicom
from pydicom import uid as _uid
from pynetdicom import AE, build_context

from ..errors import ScrubError

__all__ = ["Destination", "Outcome", "send_batch", "client_tls_context", "backoff"]

_UNCOMPRESSED_LE = (_uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian)

#: Warning statuses still mean the instance was stored (PS3.4 B.2.3).
_STORED = {0x0000, 0xB000, 0xB006, 0xB007}

#: A presentation context list may hold at most 128 entries (PS3.8 9.3.2.2).
MAX_CONTEXTS = 128


@dataclass(frozen=True)
class Destination:
    aet: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> "Destination":
        """``AET@HOST:PORT``, e.g. ``RESEARCH@pacs.example.org:104``."""
        aet, at, rest = text.partition("@")
        host, colon, port = rest.rpartition(":")
        if not (at and colon and aet and host and port.isdigit()) or len(aet) > 16:
            raise ScrubError(f"bad destination {text!r}: expected AET@HOST:PORT", reason="usage")
        return cls(aet, host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.aet}@{self.host}:{self.port}"


@dataclass(frozen=True)
class Outcome:
    """What became of one instance: ``sent``, ``retry`` (try later) or ``refused``."""

    spool_id: str
    result: str
    detail: str = ""


def client_tls_context(ca: Optional[str], cert: Optional[str] = None,
                       key: Optional[str] = None) -> ssl.SSLContext:
    """TLS to the destination: verify it against ``ca``; show ``cert`` if asked to."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.check_hostname = False  # PACS certificates name AE hosts loosely; the CA is checked
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def backoff(failures: int, cap: float) -> float:
    """Seconds to wait after ``failures`` failed tries in a row: 0.5, 1, 2 ... up to ``cap``."""
    return min(cap, 0.5 * 2 ** max(0, failures - 1))


def _facts(path: Path) -> tuple[str, str]:
    meta = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    return str(meta.SOPClassUID), str(meta.file_meta.TransferSyntaxUID)


def _contexts(facts: dict[str, tuple[str, str]]) -> list:
    """Per SOP class: the stored syntax, and plain little endian as a fallback.

    The fallback is a context of its own, so a destination that takes the stored
    (say, JPEG) syntax is never made to pick a conversion instead.
    """
    wanted: dict[tuple[str, ...], None] = {}
    for sop, syntax in facts.values():
        if syntax in _UNCOMPRESSED_LE:
            wanted[(sop, syntax, *(t for t in _UNCOMPRESSED_LE if t != syntax))] = None
        else:
            wanted[(sop, syntax)] = None
            wanted[(sop, *_UNCOMPRESSED_LE)] = None
    return [build_context(sop, list(offered)) for sop, *offered in wanted][:MAX_CONTEXTS]


def send_batch(paths: dict[str, Path], dest: Destination, calling_aet: str, *,
               tls: Optional[ssl.SSLContext] = None, timeout: float = 30.0) -> list[Outcome]:
    """Send ``paths`` (spool id -> file) over one association; one outcome each."""
    facts = {}
    outcomes = []
    for spool_id, path in paths.items():
        try:
            facts[spool_id] = _facts(path)
        except Exception as exc:  # our own output unreadable: never send it on
            outcomes.append(Outcome(spool_id, "refused", f"clean file unreadable ({type(exc).__name__})"))
    ae = AE(ae_title=calling_aet)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    assoc = ae.associate(dest.host, dest.port, contexts=_contexts(facts), ae_title=dest.aet,
                         tls_args=(tls, dest.host) if tls else None)
    if not assoc.is_established:
        if assoc.rejected_contexts and not assoc.accepted_contexts:
            return outcomes + [Outcome(s, "refused", "destination accepts none of the proposed "
                                                     "presentation contexts") for s in facts]
        why = "association rejected" if assoc.is_rejected else "no association"
        return outcomes + [Outcome(s, "retry", why) for s in facts]
    try:
        for spool_id, (sop, syntax) in facts.items():
            if not assoc.is_established:
                outcomes.append(Outcome(spool_id, "retry", "association lost"))
                continue
            outcomes.append(_send_one(assoc, spool_id, paths[spool_id], sop, syntax))
    finally:
        if assoc.is_established:
            assoc.release()
    return outcomes


def _send_one(assoc, spool_id: str, path: Path, sop: str, syntax: str) -> Outcome:
    accepted = {cx.transfer_syntax[0] for cx in assoc.accepted_contexts if cx.abstract_syntax == sop}
    if syntax in accepted:
        payload = path  # sent as stored, without decoding
    else:
        other = next((t for t in _UNCOMPRESSED_LE if t in accepted), None)
        if other is None:
            return Outcome(spool_id, "refused", f"destination accepts no context for SOP class "
                                                f"{_uid.UID(sop).name} in {_uid.UID(syntax).name}")
        try:
            payload = pydicom.dcmread(path)
            if payload.file_meta.TransferSyntaxUID.is_compressed:
                payload.decompress()  # lossless: the destination takes no compressed syntax
        except Exception as exc:
            return Outcome(spool_id, "refused", f"destination takes only uncompressed data and "
                                                f"{_uid.UID(syntax).name} could not be "
                                                f"decompressed ({type(exc).__name__})")
        payload.file_meta.TransferSyntaxUID = other
    status = assoc.send_c_store(payload)
    if not status:  # no reply: the association was aborted or timed out
        return Outcome(spool_id, "retry", "no reply to C-STORE")
    code = int(status.Status)
    if code in _STORED:
        return Outcome(spool_id, "sent", f"0x{code:04X}")
    return Outcome(spool_id, "refused", f"destination answered status 0x{code:04X}")
