"""The bundled local OCR engine: rapidocr 3.10 on onnxruntime with the models in its wheel."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, ClassVar, Self

from ..errors import ModelLoadError
from ..gpu import LOCK_DIR, acquire_gpu, gpu_request
from ..images import PageImage
from ..page import Line, Word, scaled
from ..settings import UNIT, Settings, setting
from . import OcrEngine, Recognition
from .guardrails import DEVICE_SETTING, Guardrails, check_page_shape
from .torch_device import batch_size

log = logging.getLogger(__name__)

# The models rapidocr 3.10 ships; anything else would be downloaded at run time.
MODELS = "PP-OCRv6_det_small+PP-OCRv6_rec_small+ch_ppocr_mobile_v2.0_cls"
BUNDLED_RECOGNIZER = "PP-OCRv6_rec_small"
REC_MIN_WIDTH = 320  # rapidocr's own narrowest recognition input, pixels
REC_HEIGHT = 48  # the recogniser's input height, pixels
# Lines read in batches across pages: a batch holds lines whose own input widths lie within
# this factor of its narrowest line's, so none is padded far beyond its own width.
WIDTH_SLACK = 1.15
PAGES_PER_CALL = 8  # pages whose lines share the batches (when lines are batched)
PER_LINE_MB = 24.0  # GPU memory one line of a batch takes, room for a wide line included
FALLBACK_BATCH = 32  # lines a batch on a GPU whose free memory torch cannot tell


def onnxruntime_version() -> str:
    # In the GPU image the distribution is "onnxruntime-gpu"; the module is the same.
    for distribution in ("onnxruntime", "onnxruntime-gpu"):
        try:
            return version(distribution)
        except PackageNotFoundError:
            continue
    raise ModelLoadError("onnxruntime is not installed")


def cuda_available() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


class RapidOcrEngine(OcrEngine):
    # on a CPU measured (0.5 images/s in 2 jobs on 2 cores); on a GPU an estimate
    guardrails = Guardrails(
        devices=("cpu", "cuda"), batch_sizes=(1, 1024), typical_seconds={"cpu": 4, "cuda": 0.5}
    )
    in_worker = True  # onnxruntime: a page may hang, memory may grow
    settings_block = "rapidocr"
    settings_schema: ClassVar[Settings] = {
        "device": {**DEVICE_SETTING, "description": "auto: CUDA where onnxruntime-gpu sees one"},
        "text_score": setting(0.5, "lines read with a lower confidence are dropped", **UNIT),
        "recognizer": setting("", "an ONNX text recogniser in place of the bundled one"),
        "batch_size": setting(
            0,
            "lines a batch, across pages by width; 0: from free GPU memory (1 on a CPU)",
            minimum=0,
            maximum=1024,
        ),
        "rec_min_width": setting(
            REC_MIN_WIDTH,
            "a line is padded to this width at least (pixels at height 48; rapidocr's own: 320)",
            minimum=16,
            maximum=3200,
        ),
        "turn": setting(
            "page",
            "page: a page's lines turn together when most read upside down; line: each alone",
            enum=["page", "line"],
        ),
        "alphabet": setting(
            "all", "what the recogniser may read: all it knows, or ASCII", enum=["all", "ascii"]
        ),
    }

    def __init__(
        self,
        threads: int = 1,
        device: str = "auto",
        text_score: float = 0.5,
        gpu_lock_dir: str = LOCK_DIR,
        recognizer: str = "",
        line_batch: int = 1,
        turn: str = "page",
        alphabet: str = "all",
        rec_min_width: int = REC_MIN_WIDTH,
    ):
        self.text_score = text_score
        # How lines are read where rapidocr's own defaults read them worse (docs/engines.md):
        # rapidocr pads each line of a batch to the widest one's width, and
        # the recogniser reads a line beside wider ones otherwise (it drops spaces: JALANAIR);
        # it turns each line its classifier takes for upside down, and on an upright page it
        # takes some wrongly ("page": a page's lines turn together, or none).
        # Lines a recognition batch; 0: from free GPU memory on a GPU, 1 on the CPU. Above 1,
        # the lines of several pages are read together, in batches of similar width.
        self.line_batch = line_batch
        self.turn = turn  # "page" or "line" (rapidocr's own)
        self.alphabet = alphabet  # the characters the recogniser may read: all or ascii
        self.recognizer = recognizer  # an ONNX file in place of the bundled recogniser
        # A line is padded to this width at least (rapidocr's own: 320 pixels at height 48):
        # a short line ("RM", "9.00") is then read at a fraction of the cost.
        self.rec_min_width = rec_min_width
        self.threads_per_job = threads
        self.requested_device = device
        self.gpu_lock_dir = gpu_lock_dir
        self._engine: Any = None  # loaded on the first image that is not in the cache
        self._lines_per_batch = 1  # settled when the model loads

    @property
    def batched(self) -> bool:
        """Whether lines are read in batches across pages; else one at a time, a page at a
        time (rapidocr's own path). 0 batches on a GPU only."""
        if self.line_batch == 0:
            return self.device != "cpu"
        return self.line_batch > 1

    @property
    def batch_size(self) -> int:  # type: ignore[override]
        """Pages a call: several where lines are batched, so that batches span pages."""
        return PAGES_PER_CALL if self.batched else 1

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        block = cls.settings(config)
        return cls(
            threads=threads,
            device=block["device"],
            text_score=block["text_score"],
            recognizer=block["recognizer"],
            line_batch=block["batch_size"],
            turn=block["turn"],
            alphabet=block["alphabet"],
            rec_min_width=block["rec_min_width"],
        )

    @cached_property
    def device(self) -> str:  # type: ignore[override]
        """``cuda`` (or the ``cuda:N`` asked for) where onnxruntime has CUDA and the device
        setting allows it, else ``cpu``; an index not asked for is settled when the model
        loads."""
        if self.requested_device == "cpu":
            return "cpu"
        if cuda_available():
            return "cuda" if self.requested_device == "auto" else self.requested_device
        if self.requested_device != "auto":
            raise ModelLoadError(
                f"rapidocr.device is {self.requested_device} but onnxruntime has no CUDA provider"
            )
        self.cpu_because = "onnxruntime without CUDA"
        return "cpu"

    def resources(self, remote: bool) -> dict[str, int]:
        return gpu_request(remote, self.device)

    def identity(self) -> dict[str, Any]:
        # The device is left out on purpose: CPU and GPU runs of these models are
        # interchangeable, so a cache filled on one serves the other.
        return {
            "name": "rapidocr",
            "version": version("rapidocr"),
            "onnxruntime": onnxruntime_version(),
            "model": self.models,
            "params": {
                "text_score": self.text_score,
                "batch_size": self.line_batch if self.batched else 1,
                "turn": self.turn,
                "alphabet": self.alphabet,
                **self._narrowest(),
                **({"batches": "by width, across pages"} if self.batched else {}),
            },
        }

    @property
    def language(self) -> str:  # type: ignore[override]
        """English: what the bundled recogniser is used for here (it knows Chinese too, and
        ``alphabet: ascii`` keeps it to English letters); not known for one's own."""
        return "" if self.recognizer else "en"

    def _narrowest(self) -> dict[str, int]:
        """``rec_min_width`` where it differs from rapidocr's own, so that results cached
        before the setting existed stay valid."""
        if self.rec_min_width == REC_MIN_WIDTH:
            return {}
        return {"rec_min_width": self.rec_min_width}

    @cached_property
    def models(self) -> str:
        """The models' names, a recogniser of one's own named by its digest."""
        if not self.recognizer:
            return MODELS
        path = Path(self.recognizer)
        if not path.is_file():
            raise ModelLoadError(f"rapidocr.recognizer {self.recognizer} is not a file")
        _check_recognizer(path)
        with path.open("rb") as file:
            digest = hashlib.file_digest(file, "sha256").hexdigest()[:12]
        return MODELS.replace(BUNDLED_RECOGNIZER, f"{path.stem}-{digest}")

    def _load(self) -> Any:
        params = {
            "Global.return_word_box": True,
            "Global.log_level": "warning",
            "Global.text_score": self.text_score,
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads_per_job,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "EngineConfig.onnxruntime.use_cuda": self.device != "cpu",
            "Rec.rec_batch_num": 1,
            "Rec.rec_img_shape": [3, REC_HEIGHT, self.rec_min_width],
        }
        if self.recognizer:
            params["Rec.model_path"] = self.recognizer
        if self.device.startswith("cuda"):
            _, _, index = self.device.partition(":")
            device_id = int(index) if index else acquire_gpu(self.gpu_lock_dir) or 0
            params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = device_id
            self.device = f"cuda:{device_id}"
        if self.batched:
            self._lines_per_batch = self._gpu_batch()
        try:
            from rapidocr import RapidOCR

            log.info("loading rapidocr on %s with %d thread(s)", self.device, self.threads_per_job)
            engine = RapidOCR(params=params)
        except Exception as exc:  # any failure here means no image of the run can succeed
            raise ModelLoadError(f"cannot load the rapidocr models: {exc}") from exc
        if self.turn == "page":
            engine.cls_and_rotate = partial(_turn_page_lines, engine)
        if self.alphabet == "ascii":
            recognizer = engine._load_rec_model()
            recognizer.postprocess_op = AsciiDecoder(recognizer.postprocess_op)
        return engine

    def _gpu_batch(self) -> int:
        """``batch_size`` lines, or (0) what half the GPU's free memory holds, as the torch
        engines choose (torch reads the free memory)."""
        try:
            return batch_size(self.device, self.line_batch, PER_LINE_MB, self.guardrails)
        except (ImportError, RuntimeError, AssertionError) as exc:  # no CUDA torch beside it
            log.warning("free GPU memory unknown (%s): %d lines a batch", exc, FALLBACK_BATCH)
            return FALLBACK_BATCH

    def recognize(self, page: PageImage) -> Recognition:
        return self.recognize_many([page])[0]

    def recognize_many(self, pages: Sequence[PageImage]) -> list[Recognition]:
        for page in pages:
            check_page_shape(page, "rapidocr")
        if self._engine is None:
            self._engine = self._load()
        if self._lines_per_batch == 1:  # rapidocr's own path, a page at a time
            return [_recognition(self._engine(page.image), page) for page in pages]
        found = [_detect(self._engine, page) for page in pages]
        reads = iter(self._read_lines([crop for page in found for crop in page.turned]))
        results = [page.result(self._engine, [next(reads) for _ in page.turned]) for page in found]
        facts = {"line_batch": self._lines_per_batch}
        return [
            Recognition(_recognition(result, page).lines, facts=facts)
            for result, page in zip(results, pages, strict=True)
        ]

    def _read_lines(self, crops: list[Any]) -> list[tuple[str, float, Any]]:
        """Text, confidence and word positions of every line crop, read in batches of
        similar width (``width_batches``); on a GPU out of memory, in smaller ones."""
        from rapidocr.ch_ppocr_rec import TextRecInput

        recognizer = self._engine._load_rec_model()
        widths = [input_width(crop.shape[1], crop.shape[0], self.rec_min_width) for crop in crops]
        reads: list[Any] = [None] * len(crops)
        pending = width_batches(widths, self._lines_per_batch)
        while pending:
            batch = pending.pop(0)
            recognizer.rec_batch_num = len(batch)
            try:
                found = recognizer(TextRecInput([crops[i] for i in batch], return_word_box=True))
            except Exception as exc:
                if len(batch) == 1 or not _out_of_memory(exc):
                    raise
                self._lines_per_batch = len(batch) // 2
                log.warning("out of GPU memory: %d lines a batch", self._lines_per_batch)
                size = self._lines_per_batch
                pending = [
                    b[i : i + size] for b in [batch, *pending] for i in range(0, len(b), size)
                ]
                continue
            for i, text, score, words in zip(
                batch, found.txts, found.scores, found.word_results, strict=True
            ):
                reads[i] = (text, score, words)
        return reads

    def close(self) -> None:
        self._engine = None


def input_width(width: int, height: int, narrowest: int) -> int:
    """The recogniser's input width for a line crop alone: its width at the model's height,
    padded to ``narrowest``."""
    return max(narrowest, math.ceil(REC_HEIGHT * width / max(1, height)))


def width_batches(widths: list[int], size: int, slack: float = WIDTH_SLACK) -> list[list[int]]:
    """The lines' indices in batches of at most ``size``, narrowest first, each batch's
    widths within ``slack`` times its narrowest: a batch is padded to its widest line, and a
    line padded far beyond its own width reads worse (spaces dropped, ``JALANAIR``)."""
    batches: list[list[int]] = []
    for i in sorted(range(len(widths)), key=widths.__getitem__):
        last = batches[-1] if batches else []
        if last and len(last) < size and widths[i] <= widths[last[0]] * slack:
            last.append(i)
        else:
            batches.append([i])
    return batches


def _out_of_memory(exc: Exception) -> bool:
    return "allocat" in str(exc).lower() or "out of memory" in str(exc).lower()


@dataclass
class _Detected:
    """One page's detection: what rapidocr's own output is built from once lines are read."""

    image: Any  # the page as rapidocr loaded it
    detection: Any
    turned_by: Any  # the classifier's verdict
    crops: list[Any]
    turned: list[Any]  # the crops as the recogniser reads them
    record: dict[str, Any]

    def result(self, engine: Any, reads: list[tuple[str, float, Any]]) -> Any:
        """rapidocr's output for the page (None: no lines), its lines read as ``reads``."""
        from rapidocr.ch_ppocr_rec import TextRecOutput

        if not reads:
            return None
        texts, scores, words = (tuple(column) for column in zip(*reads, strict=True))
        found = TextRecOutput(self.turned, texts, list(scores), words, 0.0)
        return engine.build_final_output(
            self.image, self.detection, self.turned_by, found, self.crops, self.record
        )


def _detect(engine: Any, page: PageImage) -> _Detected:
    """rapidocr's steps up to recognition (``RapidOCR.run_ocr_steps``), for one page."""
    from rapidocr.ch_ppocr_cls import TextClsOutput
    from rapidocr.ch_ppocr_det import TextDetOutput
    from rapidocr.main import RapidOCRError

    image = engine.load_img(page.image)
    resized, record = engine.preprocess_img(image)
    try:
        crops, detection = engine.detect_and_crop(resized, record)
    except RapidOCRError:  # rapidocr's way of saying the page has no text
        return _Detected(image, TextDetOutput(), TextClsOutput(), [], [], record)
    if engine.use_cls:
        turned, verdict = engine.cls_and_rotate(crops)
    else:
        turned, verdict = list(crops), TextClsOutput()
    return _Detected(image, detection, verdict, crops, turned, record)


def _recognition(result: Any, page: PageImage) -> Recognition:
    """rapidocr's output as the engine's lines, in page pixels."""
    if result is None or result.boxes is None or not len(result.boxes):
        return Recognition([])
    inverse = 1.0 / page.scale
    words_per_line = result.word_results or [()] * len(result.txts)
    return Recognition(
        [
            Line(
                text=text,
                confidence=float(score),
                polygon=scaled(box, inverse),
                words=[Word(w[0], float(w[1]), scaled(w[2], inverse)) for w in words],
            )
            for box, text, score, words in zip(
                result.boxes, result.txts, result.scores, words_per_line, strict=True
            )
        ]
    )


class AsciiDecoder:
    """rapidocr's CTC decoder choosing among printable ASCII only: the recogniser knows some
    18,000 characters, and on a receipt in English it reads a worn letter as an accented one
    (``RESTÄURANTS``) or a logo as a Chinese character; each step takes the likeliest
    character of the allowed ones instead."""

    def __init__(self, decode: Any):
        import numpy as np  # rapidocr's own dependency

        self.decode = decode
        self.allowed = np.array(
            [i == 0 or (len(c) == 1 and " " <= c <= "~") for i, c in enumerate(decode.character)]
        )  # index 0 is the CTC blank

    def __call__(self, probabilities: Any, *args: Any, **kwargs: Any) -> Any:
        return self.decode(probabilities * self.allowed, *args, **kwargs)


def _turn_page_lines(engine: Any, crops: list[Any]) -> tuple[list[Any], Any]:
    """rapidocr's ``cls_and_rotate``, turning all of a page's lines when most of them read
    upside down to its classifier, and none otherwise."""
    import cv2  # rapidocr's own dependency

    classifier = engine._load_cls_model()
    verdict = classifier(crops)
    upside_down = sum(
        "180" in label and score > classifier.cls_thresh for label, score in verdict.cls_res
    )
    if 2 * upside_down > len(crops):
        verdict.img_list = [cv2.rotate(crop, cv2.ROTATE_180) for crop in crops]
    else:
        verdict.img_list = list(crops)
    return verdict.img_list, verdict


def _check_recognizer(path: Path) -> None:
    """A PP-OCR text recogniser in ONNX carries its characters in its metadata, which
    rapidocr reads; anything else would fail in every OCR job, so it fails the plan."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(f"rapidocr.recognizer {path} is not an ONNX model: {exc}") from exc
    if "character" not in session.get_modelmeta().custom_metadata_map:
        raise ModelLoadError(
            f"rapidocr.recognizer {path} is not a PP-OCR text recogniser (rapidocr reads its "
            "characters from the model's metadata, and it has none)"
        )
