"""A few images at a time through an ONNX Runtime session of the image encoder's model.

A server embeds one upload, one crop or a photo's few crops per request. On the 2-core AVX2
machine (no native bfloat16, so the encoder runs float32) torch ran one 224 px image through
the optimized EfficientNet-Lite0 in 23-26 ms p50; the same function exported with
``torch.onnx`` and run by ONNX Runtime took 10-12 ms, and 60 against 77 ms for five images
(scratch timing, 2026-12-07; vectors at cosine > 0.9999997 to torch's). The graph is exported
in memory from the model the encoder runs (its ``effnet.optimize`` rewrite without the oneDNN
fused primitives, which only torch runs, and the version's fine-tuned tail when it has one)
and takes the decoded ``B x S x S x 3`` uint8 pixels: the scaling by the ImageNet mean and
std, the spatial mean and the normalization are in the graph.

Larger batches (a build's catalog) keep torch, which runs them side by side on one thread
each; so does bfloat16 on a CPU that has it natively.
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from moodboard.understand.effnet import MEAN, STD, build_model
from moodboard.understand.visual_tail import file_key

#: Batches of at most this many images run through ONNX Runtime.
FEW = 4
#: ONNX opset of the export (ONNX Runtime 1.32 runs 7..23).
_OPSET = 17

#: Per (image side, tail's content key, threads, pooled): the session.
_SESSIONS: dict[tuple[int, str | None, int, bool], ort.InferenceSession] = {}
_LOCK = threading.Lock()


class _Network(torch.nn.Module):
    """uint8 ``B x S x S x 3`` RGB pixels -> unit-norm pooled features ``B x 1280`` (or, not
    ``pooled``, the last feature maps ``B x 1280 x S/32 x S/32``)."""

    def __init__(self, model: torch.nn.Module, pooled: bool) -> None:
        super().__init__()
        self.model, self.pooled = model, pooled
        std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("shift", mean / std)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).float() * self.scale - self.shift
        maps = self.model.extract_features(x)
        if not self.pooled:
            return maps
        return torch.nn.functional.normalize(maps.mean((2, 3)), dim=1)


def _export(image_size: int, tail: Path | None, pooled: bool) -> bytes:
    """The ONNX graph of the model at ``image_size`` (with ``tail``), any batch size."""
    model = build_model(image_size, fuse_activations=False, tail=tail)
    module = _Network(model, pooled).eval()
    example = torch.zeros((1, image_size, image_size, 3), dtype=torch.uint8)
    buf = io.BytesIO()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on constant folding
        torch.onnx.export(
            module,
            (example,),
            buf,
            input_names=["pixels"],
            output_names=["out"],
            dynamic_axes={"pixels": {0: "batch"}, "out": {0: "batch"}},
            opset_version=_OPSET,
            dynamo=False,
        )
    return buf.getvalue()


def _session(image_size: int, tail: Path | None, pooled: bool) -> ort.InferenceSession:
    """The session of the encoder at ``image_size`` with ``tail`` (exported once per process,
    tail content and thread count; about 2 s). Its threads are torch's count at the call: a
    server's (``serve.torch_threads``), or one where a photo's objects are found on the other
    core meanwhile (``threads.side_by_side``). They stop spinning at the end of a call, so the
    work after an embed gets the cores."""
    threads = torch.get_num_threads()
    key = (image_size, None if tail is None else file_key(tail), threads, pooled)
    with _LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.force_spinning_stop", "1")
            options.log_severity_level = 3  # errors only
            session = _SESSIONS[key] = ort.InferenceSession(
                _export(image_size, tail, pooled), options, providers=["CPUExecutionProvider"]
            )
        return session


def _checked(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[3] != 3:
        raise ValueError(f"ONNX Runtime's image path takes uint8 (B, S, S, 3). Got {pixels.shape}.")
    if not 0 < len(pixels) <= FEW or pixels.shape[1] != pixels.shape[2]:
        raise ValueError(
            f"ONNX Runtime's image path takes 1..{FEW} square images. Got {pixels.shape}: "
            "larger batches run through torch."
        )
    return np.ascontiguousarray(pixels)


def embed_few(pixels: np.ndarray, tail: Path | None) -> np.ndarray:
    """Unit-norm float32 embeddings ``(B, 1280)`` of ``B <= FEW`` decoded square images.

    Parameters
    ----------
    pixels
        ``uint8 (B, S, S, 3)`` RGB, as the encoder's decoders fill them.
    tail
        The fine-tuned tail the encoder runs, or None.

    Raises
    ------
    ValueError
        If ``pixels`` is not such a batch of at most ``FEW`` images.
    """
    pixels = _checked(pixels)
    return _session(pixels.shape[1], tail, True).run(None, {"pixels": pixels})[0]


def maps_few(pixels: np.ndarray) -> np.ndarray:
    """The ImageNet model's last feature maps, float32 ``(B, 1280, S/32, S/32)``, of ``B <=
    FEW`` decoded square images (what the object detector's head reads); raises
    ``ValueError`` as ``embed_few`` does."""
    pixels = _checked(pixels)
    return _session(pixels.shape[1], None, False).run(None, {"pixels": pixels})[0]
