"""The bundled local OCR engine: rapidocr 3.10 on onnxruntime with the models in its wheel."""

from __future__ import annotations

import hashlib
import logging
from functools import cached_property, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Self

from ..errors import ModelLoadError, UnsupportedImage
from ..gpu import LOCK_DIR, acquire_gpu, gpu_request
from ..images import PageImage
from ..page import Line, Word, scaled
from . import OcrEngine, Recognition
from .guardrails import Guardrails

log = logging.getLogger(__name__)

# The models rapidocr 3.10 ships; anything else would be downloaded at run time.
MODELS = "PP-OCRv6_det_small+PP-OCRv6_rec_small+ch_ppocr_mobile_v2.0_cls"
BUNDLED_RECOGNIZER = "PP-OCRv6_rec_small"


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
    guardrails = Guardrails(devices=("cpu", "cuda"), typical_seconds={"cpu": 4, "cuda": 0.5})
    in_worker = True  # onnxruntime: a page may hang, memory may grow

    def __init__(
        self,
        threads: int = 1,
        use_gpu: str = "auto",
        text_score: float = 0.5,
        gpu_lock_dir: str = LOCK_DIR,
        recognizer: str = "",
        line_batch: int = 1,
        turn: str = "page",
        alphabet: str = "all",
    ):
        self.text_score = text_score
        # How lines are read where rapidocr's own defaults read them worse (README, "Choosing
        # an OCR engine"): rapidocr pads each line of a batch to the widest one's width, and
        # the recogniser reads a line beside wider ones otherwise (it drops spaces: JALANAIR);
        # it turns each line its classifier takes for upside down, and on an upright page it
        # takes some wrongly ("page": a page's lines turn together, or none).
        self.line_batch = line_batch  # lines a recognition batch; rapidocr's own: 6
        self.turn = turn  # "page" or "line" (rapidocr's own)
        self.alphabet = alphabet  # the characters the recogniser may read: all or ascii
        self.recognizer = recognizer  # an ONNX file in place of the bundled recogniser
        self.threads_per_job = threads
        self.use_gpu = use_gpu
        self.gpu_lock_dir = gpu_lock_dir
        self._engine: Any = None  # loaded on the first image that is not in the cache

    @classmethod
    def from_config(cls, config: dict[str, Any], threads: int = 1) -> Self:
        local = config["local"]
        return cls(
            threads=threads,
            use_gpu=local["use_gpu"],
            text_score=local["text_score"],
            recognizer=local.get("recognizer", ""),
            line_batch=local.get("batch_size", 1),
            turn=local.get("turn", "page"),
            alphabet=local.get("alphabet", "all"),
        )

    @cached_property
    def device(self) -> str:  # type: ignore[override]
        """``cuda`` where onnxruntime has CUDA (and use_gpu allows it), else ``cpu``; the
        device index is settled when the model loads."""
        if self.use_gpu == "false":
            return "cpu"
        if cuda_available():
            return "cuda"
        if self.use_gpu == "true":
            raise ModelLoadError("use_gpu is true but onnxruntime has no CUDA provider")
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
                "batch_size": self.line_batch,
                "turn": self.turn,
                "alphabet": self.alphabet,
            },
        }

    @cached_property
    def models(self) -> str:
        """The models' names, a recogniser of one's own named by its digest."""
        if not self.recognizer:
            return MODELS
        path = Path(self.recognizer)
        if not path.is_file():
            raise ModelLoadError(f"local.recognizer {self.recognizer} is not a file")
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
            "Rec.rec_batch_num": self.line_batch,
        }
        if self.recognizer:
            params["Rec.model_path"] = self.recognizer
        if self.device == "cuda":
            device_id = acquire_gpu(self.gpu_lock_dir) or 0
            params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = device_id
            self.device = f"cuda:{device_id}"
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

    def recognize(self, page: PageImage) -> Recognition:
        _check_readable(page)
        if self._engine is None:
            self._engine = self._load()
        result = self._engine(page.image)
        if result.boxes is None:
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

    def close(self) -> None:
        self._engine = None


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
        raise ModelLoadError(f"local.recognizer {path} is not an ONNX model: {exc}") from exc
    if "character" not in session.get_modelmeta().custom_metadata_map:
        raise ModelLoadError(
            f"local.recognizer {path} is not a PP-OCR text recogniser (rapidocr reads its "
            "characters from the model's metadata, and it has none)"
        )


MIN_SIDE = 8  # pixels
MAX_ASPECT = 100  # the longer side over the shorter


def _check_readable(page: PageImage) -> None:
    """A page rapidocr cannot work on gets a clear reason, not the class of its error
    (a 20000x20 strip would fail with a bare ``ResizeImgError``)."""
    width, height = page.image.size
    if min(width, height) < MIN_SIDE or max(width, height) > MAX_ASPECT * min(width, height):
        raise UnsupportedImage(
            f"a {page.width}x{page.height} page (read at {width}x{height}) is too thin to "
            f"read: rapidocr needs sides of at least {MIN_SIDE} pixels and at most "
            f"{MAX_ASPECT} times longer than wide"
        )
