"""How a job of the workflow logs: to its rule's log file and to the console, and how it ends
when the run cannot go on (a fatal error said in one line, no traceback)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .errors import FatalError

FORMAT = "%(asctime)s %(levelname)s %(message)s"


@contextmanager
def job_logging(log_files: Sequence[str] = ()) -> Iterator[None]:
    """Log to stderr (progress, warnings: what the run's console and AWS Batch's job log
    show) and to the rule's ``log:`` file, which also keeps ocrkie's debug lines (one per
    image); a ``FatalError`` ends the job with its message alone and exit status 1."""
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [console]
    handlers += [logging.FileHandler(path, mode="w", encoding="utf-8") for path in log_files]
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    logging.getLogger("ocrkie").setLevel(logging.DEBUG)
    try:
        yield
    except FatalError as exc:
        logging.getLogger("ocrkie").error("%s", exc)
        sys.exit(1)
