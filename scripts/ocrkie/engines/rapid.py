"""The bundled local engine: rapidocr 3.10 on onnxruntime with the models in its wheel."""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

from ..errors import ModelLoadError
from ..formats import Line, Word
from ..gpu import acquire_gpu
from ..images import PageImage
from . import Recognition

log = logging.getLogger(__name__)

# The models rapidocr 3.10 ships; anything else would be downloaded at run time.
MODELS = "PP-OCRv6_det_small+PP-OCRv6_rec_small+ch_ppocr_mobile_v2.0_cls"


def _onnxruntime_version() -> str:
    # Not importlib.metadata: in the GPU image the distribution is "onnxruntime-gpu".
    import onnxruntime

    return onnxruntime.__version__


def cuda_available() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


class RapidOcrEngine:
    def __init__(
        self,
        threads: int = 1,
        use_gpu: str = "auto",
        text_score: float = 0.5,
        gpu_lock_dir: str = "/tmp/ocrkie-gpu-locks",
    ):
        self.text_score = text_score
        self.threads = threads
        self.gpu_lock_dir = gpu_lock_dir
        self.device = "cuda" if use_gpu != "false" and cuda_available() else "cpu"
        if use_gpu == "true" and self.device == "cpu":
            raise ModelLoadError("use_gpu is true but onnxruntime has no CUDA provider")
        self._engine: Any = None  # loaded on the first image that is not in the cache

    def _load(self) -> Any:
        params = {
            "Global.return_word_box": True,
            "Global.log_level": "warning",
            "Global.text_score": self.text_score,
            "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            "EngineConfig.onnxruntime.use_cuda": self.device == "cuda",
        }
        if self.device == "cuda":
            device_id = acquire_gpu(self.gpu_lock_dir) or 0
            params["EngineConfig.onnxruntime.cuda_ep_cfg.device_id"] = device_id
            self.device = f"cuda:{device_id}"
        try:
            from rapidocr import RapidOCR

            log.info("loading rapidocr on %s with %d thread(s)", self.device, self.threads)
            return RapidOCR(params=params)
        except Exception as exc:  # any failure here means no image of the run can succeed
            raise ModelLoadError(f"cannot load the rapidocr models: {exc}") from exc

    def identity(self) -> dict[str, Any]:
        # The device is left out on purpose: CPU and GPU runs of these models are
        # interchangeable, so a cache filled on one serves the other.
        return {
            "name": "rapidocr",
            "version": version("rapidocr"),
            "onnxruntime": _onnxruntime_version(),
            "model": MODELS,
            "params": {"text_score": self.text_score},
        }

    def recognize(self, page: PageImage, name: str = "") -> Recognition:
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
                    polygon=_scaled(box, inverse),
                    words=[Word(w[0], float(w[1]), _scaled(w[2], inverse)) for w in words],
                )
                for box, text, score, words in zip(
                    result.boxes, result.txts, result.scores, words_per_line, strict=True
                )
            ]
        )


def _scaled(points: Any, factor: float) -> list[list[float]]:
    return [[float(x) * factor, float(y) * factor] for x, y in points]
