"""How a job of the workflow logs: to its rule's log file and to the console, and how it ends
when the run cannot go on (a fatal error said in one line, no traceback)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .errors import ConfigError, FatalError, SetupError

FORMAT = "%(asctime)s %(levelname)s %(message)s"


@contextmanager
def job_logging(log_files: Sequence[str] = ()) -> Iterator[None]:
    """Log to stderr (progress, warnings: what the run's console and AWS Batch's job log
    show) and to the rule's ``log:`` file, which also keeps ocrkie's debug lines (one per
    image). A ``FatalError`` (or a setting or set-up error only a job could find) ends the
    job with its message alone and exit status 1; Ctrl-C ends it with a line in the log file
    alone (the submitting Snakemake says how to resume) and exit status 130. Entry scripts
    import the rest of the library inside the block, so that Ctrl-C while a job starts ends
    it quietly too."""
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [console]
    handlers += [logging.FileHandler(path, mode="w", encoding="utf-8") for path in log_files]
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    logging.getLogger("ocrkie").setLevel(logging.DEBUG)
    try:
        yield
    except (FatalError, ConfigError, SetupError) as exc:
        logging.getLogger("ocrkie").error("%s", exc)
        sys.exit(1)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # once is enough: end without tracebacks
        logging.getLogger().removeHandler(handlers[0])
        logging.getLogger("ocrkie").warning("stopped (Ctrl-C)")
        sys.exit(130)
