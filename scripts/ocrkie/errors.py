"""The one classification of failures: every class here says how the run treats it, and every
stage, engine and step raises one of them.

- ``ConfigError``: a setting is wrong (a backend no engine serves, a device, a model path).
  ``SetupError``: the run cannot start as things stand (no images where the input points, a
  model folder that does not fit, the AWS side not ready, another run using the plan). Both
  are found when the workflow is parsed, before any job; the run stops with their message,
  one line.
- ``ImageError``: permanent and specific to one image (unreadable file, decompression bomb,
  an API answering 400/413/415, a page the engine or the decoder did not finish in time).
  The image gets an error record; the batch goes on.
- ``TransientError``: worth retrying (timeout, connection drop, 429, 5xx, malformed answer).
  Retried by the caller; if retries run out, an error record marked for the next run to try
  again.
- ``FatalError``: the run cannot succeed (model cannot load, API key rejected, the service
  down). The job fails loudly, in one line, so that thousands of images are not failed one by
  one.
"""

from __future__ import annotations


class OcrkieError(Exception):
    """Base class. ``kind`` is the short class name written to error records; ``status`` the
    HTTP status of the service's answer behind the error, where there was one."""

    def __init__(self, *args: object, status: int | None = None) -> None:
        super().__init__(*args)
        self.status = status

    @property
    def kind(self) -> str:
        return type(self).__name__


# -- before any job ----------------------------------------------------------------------------


class ConfigError(OcrkieError, ValueError):
    """A setting that cannot work: the message names it."""


class DeviceError(ConfigError):
    """A configured device that is no device, or that this machine does not have."""


class SetupError(OcrkieError):
    """The run cannot start as things stand: the message says what to fix."""


class NoImages(SetupError):
    """The input names no image: a mistyped or empty location, most likely."""


class ModelError(SetupError):
    """A KIE model folder that is missing, damaged, or trained for another schema or OCR."""


class AwsSetupError(SetupError):
    """The AWS side is not ready for this run."""


class PlanInUse(SetupError):
    """Another run holds the plan, or wrote another one since this run read it."""


# -- one image ---------------------------------------------------------------------------------


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


class UnexpectedAnswer(ImageError):
    """The service answered for other pages than it was sent (billed, but not usable)."""


class PageTimeout(ImageError):
    """The engine or the decoder gave no answer in time; it was stopped."""


class ChildDied(ImageError):
    """The engine's or the decoder's process ended during a call: out of memory, or a crash
    in native code."""


class UpstreamFailure(OcrkieError):
    """The OCR record this KIE record depends on is an error record: its class is this
    error's kind."""

    def __init__(self, error: dict[str, str]):
        super().__init__(error["message"])
        self.error = error

    @property
    def kind(self) -> str:
        return self.error["class"]


# -- the service -------------------------------------------------------------------------------


class TransientError(OcrkieError):
    """A fault worth retrying."""


# -- the run -----------------------------------------------------------------------------------


class FatalError(OcrkieError):
    """A systemic fault: stop the job."""


class ModelLoadError(FatalError):
    """The local model could not be loaded."""


class AuthenticationError(FatalError):
    """The service rejected the credentials (401/403)."""


class ServiceUnavailable(FatalError):
    """The service failed too many calls in a row: the stage stops."""


class TooManyFailures(FatalError):
    """More images failed than ``max_failed`` allows: the run's exit status says so, after
    every other image is done."""
