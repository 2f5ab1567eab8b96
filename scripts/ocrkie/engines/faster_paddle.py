"""faster-paddle: PP-OCRv6 tiny and small in Rust on its own ONNX Runtime, models bundled.

It reads whole lines: a line's words are cut from its box (``page.split_words``), each with
the line's confidence, and its boxes are upright rectangles (it returns no turned polygons).
It computes on the CPU only.

``model: cascade`` reads every page with the tiny model, then reads again the lines the tiny
model is less sure of than ``reread_below`` with the PP-OCRv6 small recogniser (the one in
the rapidocr wheel, on onnxruntime; 1: every line): each line's box is cut from the page
and recognised alone, with no second detection. Each line of the record says which model
read it, and each page's ``engine.models`` how many lines each read.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar, Self

from ..errors import ModelLoadError, UnreadableImage
from ..images import PageImage
from ..page import Line, Polygon, split_words
from ..settings import UNIT, Settings, setting
from . import OcrEngine, Recognition
from .guardrails import Guardrails, check_page_shape

log = logging.getLogger(__name__)

MODELS = ["small", "tiny", "cascade"]
SMALL_MIN_WIDTH = 96  # the small recogniser's narrowest input, pixels (faster-paddle's own)
RECOGNIZER = "PP-OCRv6_rec_small"  # what the cascade reads again with (rapidocr's wheel)


def library_version() -> str:
    try:
        return version("faster-paddle")
    except PackageNotFoundError:
        raise ModelLoadError(
            "ocr_backend faster_paddle needs the faster-paddle package: pip install "
            "faster-paddle==1.0.4 (its wheels bundle the models; nothing is downloaded)"
        ) from None


def gpu_build_installed() -> bool:
    try:
        version("onnxruntime-gpu")  # metadata only: nothing is imported
    except PackageNotFoundError:
        return False
    return True


class FasterPaddleEngine(OcrEngine):
    """faster-paddle's PP-OCRv6 small or tiny, or a cascade of the two."""

    # small, on a CPU: 1.8 CPU s an image through the workflow (docs/engines-speed.md)
    guardrails = Guardrails(devices=("cpu",), typical_seconds={"cpu": 2})
    in_worker = True  # native code: a page may hang, memory may grow
    language = "en"  # what its bundled PP-OCRv6 models are used for here (they know Chinese too)
    settings_block = "faster_paddle"
    settings_schema: ClassVar[Settings] = {
        "model": setting(
            "small", "cascade: tiny reads, small reads again the lines tiny doubts", enum=MODELS
        ),
        "reread_below": setting(
            0.99, "cascade: lines read less sure than this are read again (1: every line)", **UNIT
        ),
        "text_score": setting(0.5, "lines read with a lower confidence are dropped", **UNIT),
        "det_max_side": setting(1600, "pages are detected at this longer side", minimum=32),
        "rec_min_width": setting(
            0, "narrowest recognition input, pixels; 0: the model's own", minimum=0
        ),
        "batch_size": setting(1, "pages a call", minimum=1),
    }

    def __init__(
        self,
        threads: int = 1,
        model: str = "small",
        reread_below: float = 0.99,
        text_score: float = 0.5,
        det_max_side: int = 1600,
        rec_min_width: int = 0,
        batch_size: int = 1,
    ):
        if model not in MODELS:
            raise ValueError(f"faster_paddle.model: {model!r} is not one of {', '.join(MODELS)}")
        self.model = model
        self.reread_below = reread_below
        self.text_score = text_score  # lines read with less confidence are left out
        self.det_max_side = det_max_side
        self.rec_min_width = rec_min_width  # 0: the model's own (tiny 64, small 96 pixels)
        self.batch_size = batch_size  # pages a call: their lines share the recognition work
        self.threads_per_job = threads
        self._engine: Any = None  # loaded on the first page not in the cache
        self._recognizer: Any = None  # the cascade's small recogniser, loaded when needed

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        return cls(threads=threads, **cls.settings(config))

    @property
    def cpu_because(self) -> str:  # type: ignore[override]
        """Said in the plan where this machine reads on a GPU (the GPU build of onnxruntime
        is installed): this engine leaves it idle."""
        if not gpu_build_installed():
            return ""
        return "faster-paddle reads on the CPU only; ocr_backend: rapidocr reads on the GPU"

    def identity(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "text_score": self.text_score,
            "det_max_side": self.det_max_side,
            "rec_min_width": self.rec_min_width,
        }
        identity = {"name": "faster_paddle", "version": library_version(), "model": self.model}
        if self.model == "cascade":
            params["reread_below"] = self.reread_below
            identity["rapidocr"] = version("rapidocr")
            identity["model"] = f"PP-OCRv6_tiny+{RECOGNIZER}"
        else:
            identity["model"] = f"PP-OCRv6_{self.model}"
        return {**identity, "params": params}

    def recognize(self, page: PageImage) -> Recognition:
        return self.recognize_many([page])[0]

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        for page in pages:
            check_page_shape(page, "faster-paddle")
        found = self._read([_encoded(page) for page in pages])
        marked = "tiny" if self.model == "cascade" else ""  # which model read each line
        lines = [_lines(result, page, marked) for result, page in zip(found, pages, strict=True)]
        if self.model == "cascade":
            self._reread(pages, lines)
        kept = [
            [ln for ln in page_lines if ln.confidence >= self.text_score] for page_lines in lines
        ]
        if self.model != "cascade":
            return [Recognition(page_lines) for page_lines in kept]
        return [
            Recognition(page_lines, facts={"models": _tally(page_lines)}) for page_lines in kept
        ]

    def close(self) -> None:
        self._engine = self._recognizer = None

    def _read(self, images: list[bytes]) -> list[dict[str, Any]]:
        if self._engine is None:
            self._engine = self._load()
        try:
            if len(images) == 1:
                return [self._engine.ocr(images[0])]
            return self._engine.ocr_batch(images, batch_size=len(images))
        except RuntimeError as exc:  # it could not decode the page it was given
            raise UnreadableImage(f"faster-paddle could not read the page: {exc}") from exc

    def _load(self) -> Any:
        size = "small" if self.model == "small" else "tiny"
        options: dict[str, Any] = {"det_max_side": self.det_max_side}
        if self.rec_min_width:
            options["rec_min_width"] = self.rec_min_width
        try:
            import faster_paddle

            log.info("loading faster-paddle %s with %d thread(s)", size, self.threads_per_job)
            return faster_paddle.OcrEngine(model_size=size, threads=self.threads_per_job, **options)
        except Exception as exc:  # any failure here means no image of the run can succeed
            raise ModelLoadError(f"cannot load the faster-paddle {size} model: {exc}") from exc

    # -- the cascade -------------------------------------------------------------------------

    def _reread(self, pages: Sequence[PageImage], lines: list[list[Line]]) -> None:
        """The small recogniser's reading of the lines the tiny model was unsure of, in place
        (where it reads nothing, the tiny model's reading stays)."""
        doubtful = [
            (page, line)
            for page, page_lines in zip(pages, lines, strict=True)
            for line in page_lines
            if line.confidence < self.reread_below or self.reread_below >= 1
        ]
        if not doubtful:
            return
        crops = [_cut(page, line.polygon) for page, line in doubtful]
        for (_, line), (text, confidence) in zip(doubtful, self._recognize(crops), strict=True):
            if text.strip():
                line.text, line.confidence, line.model = text, confidence, "small"
                line.words = split_words(text, line.polygon, confidence)

    def _recognize(self, crops: list[Any]) -> list[tuple[str, float]]:
        """Text and confidence of each line crop by the small recogniser, one line a batch
        (as ``local`` reads: padded to its own width, no less than ``SMALL_MIN_WIDTH``)."""
        if self._recognizer is None:
            try:
                from rapidocr import RapidOCR

                params = {
                    "Global.log_level": "warning",
                    "EngineConfig.onnxruntime.intra_op_num_threads": self.threads_per_job,
                    "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    "Rec.rec_batch_num": 1,
                    "Rec.rec_img_shape": [3, 48, SMALL_MIN_WIDTH],
                }
                self._recognizer = RapidOCR(params=params)._load_rec_model()
            except Exception as exc:
                raise ModelLoadError(f"cannot load the small recogniser: {exc}") from exc
        from rapidocr.ch_ppocr_rec import TextRecInput

        found = self._recognizer(TextRecInput(img=crops))
        return [(text, float(score)) for text, score in zip(found.txts, found.scores, strict=True)]


def _encoded(page: PageImage) -> bytes:
    """The page's pixels as the library takes them: an encoded file (BMP: no compression)."""
    data = io.BytesIO()
    page.image.save(data, "BMP")
    return data.getvalue()


def _lines(result: dict[str, Any], page: PageImage, model: str) -> list[Line]:
    inverse = 1.0 / page.scale
    lines = []
    for bound in result["bounds"].values():
        text, confidence = bound["text"], float(bound["confidence"])
        if not text.strip():
            continue
        (x0, y0), (x1, y1) = bound["topLeftCoord"], bound["bottomRightCoord"]
        polygon = [[x * inverse, y * inverse] for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        words = split_words(text, polygon, confidence)
        lines.append(Line(text, confidence, polygon, words, model=model))
    return lines


def _cut(page: PageImage, polygon: Polygon) -> Any:
    """The line's box in the page image's pixels, as the recogniser takes it (BGR)."""
    import numpy as np

    x0, y0 = (int(min(p[i] for p in polygon) * page.scale) for i in (0, 1))
    x1, y1 = (int(max(p[i] for p in polygon) * page.scale) + 1 for i in (0, 1))
    crop = np.asarray(page.image.crop((x0, y0, x1, y1)).convert("RGB"))
    return np.ascontiguousarray(crop[:, :, ::-1])


def _tally(lines: list[Line]) -> dict[str, int]:
    tally: dict[str, int] = {}
    for line in lines:
        tally[line.model] = tally.get(line.model, 0) + 1
    return tally
