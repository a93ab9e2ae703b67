"""The one exception type pixelscrub raises for a file it cannot process.

Its message is one line that says why, without PHI, so batch reports and logs can
print it as it is.
"""

__all__ = ["ScrubError"]


class ScrubError(Exception):
    """A file could not be processed; ``reason`` is a short machine-friendly code."""

    def __init__(self, message: str, *, reason: str = "error"):
        super().__init__(" ".join(str(message).split()))
        self.reason = reason
