"""A DICOM gateway: scrub on the wire between a modality or PACS and its destination.

``pixelscrub serve`` (or :class:`Gateway` from Python) is a Storage SCP that
spools each instance durably before saying "stored", scrubs it with the batch
command's worker processes and options, and forwards clean instances with a
C-STORE SCU, retrying with backoff.  See :mod:`pixelscrub.gateway.spool` for the
spool layout that makes a crash or restart lose nothing.
"""
from .forward import Destination
from .service import Gateway, GatewayConfig
from .spool import Spool

__all__ = ["Gateway", "GatewayConfig", "Destination", "Spool"]
