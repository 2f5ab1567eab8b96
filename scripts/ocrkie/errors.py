"""The one classification of failures that every stage and backend uses.

- ``ImageError``: permanent and specific to one image (unreadable file, decompression bomb,
  an API answering 400/413/415). The image gets an error record; the batch goes on.
- ``TransientError``: worth retrying (timeout, connection drop, 429, 5xx, malformed answer).
  Retried by the caller; if retries run out it is recorded like an ``ImageError``.
- ``FatalError``: the run cannot succeed (model cannot load, API key rejected). The job fails
  loudly so that thousands of images are not failed one by one.
"""


class OcrkieError(Exception):
    """Base class. ``kind`` is the short class name written to error records."""

    @property
    def kind(self) -> str:
        return type(self).__name__


class ImageError(OcrkieError):
    """This image cannot be processed; others can."""


class UnreadableImage(ImageError):
    """Empty, truncated, corrupt or not an image at all."""


class DecompressionBomb(ImageError):
    """More pixels than the configured limit."""


class TooManyPages(ImageError):
    """A document with more pages than the configured limit."""


class UnsupportedImage(ImageError):
    """A pixel mode or format the normaliser cannot convert."""


class RejectedByService(ImageError):
    """The service answered with a permanent per-document error (400, 413, 415)."""


class TransientError(OcrkieError):
    """A fault worth retrying."""


class FatalError(OcrkieError):
    """A systemic fault: stop the job."""


class ModelLoadError(FatalError):
    """The local model could not be loaded."""


class AuthenticationError(FatalError):
    """The service rejected the credentials (401/403)."""
