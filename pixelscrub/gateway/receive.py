"""The gateway's Storage SCP: accept instances, spool them, then say "stored".

Instances are spooled in the transfer syntax they arrived in (no decoding, no
conversion); the reply to C-STORE is sent only after the spooled file is synced.
"""
from __future__ import annotations

import itertools
import ssl
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional

from pydicom import uid as _uid
from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification

from ..video import VIDEO_SYNTAXES
from .spool import Spool

__all__ = ["ACCEPTED_SYNTAXES", "Receiver", "server_tls_context"]

#: What the codec layer reads: the uncompressed syntaxes, every image codec pydicom's
#: plugins decode here, and the video syntaxes PyAV handles.
ACCEPTED_SYNTAXES = [
    _uid.ExplicitVRLittleEndian, _uid.ImplicitVRLittleEndian, _uid.DeflatedExplicitVRLittleEndian,
    _uid.ExplicitVRBigEndian, _uid.JPEGBaseline8Bit, _uid.JPEGExtended12Bit, _uid.JPEGLossless,
    _uid.JPEGLosslessSV1, _uid.JPEGLSLossless, _uid.JPEGLSNearLossless, _uid.JPEG2000Lossless,
    _uid.JPEG2000, _uid.HTJ2KLossless, _uid.HTJ2KLosslessRPCL, _uid.HTJ2K, _uid.RLELossless,
    *sorted(VIDEO_SYNTAXES),
]

#: C-STORE status: refused, out of resources (the spool could not be written).
OUT_OF_RESOURCES = 0xA700


def server_tls_context(cert: str, key: str, ca: Optional[str] = None) -> ssl.SSLContext:
    """TLS for the listening side; with ``ca``, senders must show a certificate it signed."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_REQUIRED if ca else ssl.CERT_NONE
    return ctx


@dataclass
class _Association:
    number: int
    calling_ae: str
    peer: str
    stored: int = 0
    refused: int = 0
    echoes: int = 0


@dataclass
class Receiver:
    """A Storage and Verification SCP writing into ``spool``.

    ``allow`` lists the calling AE titles that may connect (empty: any).
    ``on_stored`` is called after each instance is safely spooled.
    """

    spool: Spool
    aet: str
    host: str
    port: int
    allow: tuple[str, ...] = ()
    tls: Optional[ssl.SSLContext] = None
    on_stored: Callable[[], None] = lambda: None
    log: Callable[[str], None] = lambda text: None
    counts: dict = field(default_factory=lambda: {"associations": 0, "stored": 0, "refused": 0,
                                                  "rejected": 0})
    _server: object = None
    _open: dict = field(default_factory=dict)
    _numbers: object = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        ae = AE(ae_title=self.aet)
        for cx in AllStoragePresentationContexts:
            ae.add_supported_context(cx.abstract_syntax, ACCEPTED_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.maximum_associations = 32
        if self.allow:
            ae.require_calling_aet = list(self.allow)
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo),
                    (evt.EVT_ACCEPTED, self._on_accepted), (evt.EVT_RELEASED, self._on_closed),
                    (evt.EVT_ABORTED, self._on_closed), (evt.EVT_REJECTED, self._on_rejected)]
        self._server = ae.start_server((self.host, self.port), block=False,
                                       ssl_context=self.tls, evt_handlers=handlers)
        self.port = self._server.server_address[1]  # port 0 picks a free one

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # -- association bookkeeping (no PHI: AE titles and addresses only) --------------------
    def _on_accepted(self, event) -> None:
        assoc = event.assoc
        with self._lock:
            record = _Association(next(self._numbers), assoc.requestor.ae_title,
                                  f"{assoc.requestor.address}:{assoc.requestor.port}")
            self._open[id(assoc)] = record
            self.counts["associations"] += 1
        self.spool.audit({"event": "association-open", "association": record.number,
                          "calling_ae": record.calling_ae, "peer": record.peer})

    def _on_rejected(self, event) -> None:
        requestor = event.assoc.requestor
        with self._lock:
            self.counts["rejected"] += 1
        self.spool.audit({"event": "association-rejected", "calling_ae": requestor.ae_title,
                          "peer": f"{requestor.address}:{requestor.port}"})
        self.log(f"refused an association from AE {requestor.ae_title!r} (not allowed)")

    def _on_closed(self, event) -> None:
        with self._lock:
            record = self._open.pop(id(event.assoc), None)
        if record is None:
            return
        how = "released" if event.event is evt.EVT_RELEASED else "aborted"
        self.spool.audit({"event": "association-close", "association": record.number,
                          "calling_ae": record.calling_ae, "outcome": how,
                          "stored": record.stored, "refused": record.refused,
                          "echoes": record.echoes})
        self.log(f"association {record.number} from {record.calling_ae} {how}: "
                 f"{record.stored} stored, {record.refused} refused")

    def _record(self, event) -> Optional[_Association]:
        with self._lock:
            return self._open.get(id(event.assoc))

    # -- DIMSE services ----------------------------------------------------------------------
    def _on_echo(self, event) -> int:
        record = self._record(event)
        if record:
            record.echoes += 1
        return 0x0000

    def _on_store(self, event) -> int:
        record = self._record(event)
        try:
            data = event.encoded_dataset(include_meta=True)
            spool_id = self.spool.receive(data)
        except OSError as exc:
            with self._lock:
                self.counts["refused"] += 1
                if record:
                    record.refused += 1
            self.log(f"could not spool an instance ({exc.strerror or type(exc).__name__}): "
                     "refused it with status 0xA700")
            return OUT_OF_RESOURCES
        with self._lock:
            self.counts["stored"] += 1
            if record:
                record.stored += 1
        self.spool.audit({"event": "received", "spool_id": spool_id,
                          "association": record.number if record else None,
                          "transfer_syntax": str(event.context.transfer_syntax)})
        self.on_stored()
        return 0x0000
