"""Objects in a photo: a CenterNet-style head on the frozen EfficientNet-Lite0 feature maps.

The photo is resized (squashed) to ``input_size`` squared; the backbone of the image encoder
(``understand.effnet``, the same optimized model) gives ``1280 x G x G`` feature maps
(``G = input_size / 32``: 10 x 10 at 320 px); a small head (1x1 conv to ``hidden``, 3x3 conv,
1x1 conv to 5 channels) predicts per cell an objectness logit, the object's centre within the
cell and its width and height as shares of the photo. Peaks of the objectness (3x3 local
maxima) over ``threshold`` become boxes; overlapping boxes are suppressed (``nms_iou``).

The head is trained by ``python -m moodboard.understand.detect_train`` on synthetic photos of
2-4 catalog products pasted onto varied backgrounds (``understand.composites``), from the
train split of the fashion catalog, and ships in the package as ``weights/detector.safetensors``
(fp16, about 0.5 MB; loaded offline, no pickle). The detector finds products; what each one is
comes from the category classifier over its crop's image vector (``understand.categorize``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError, InputError
from moodboard.media import MAX_PIXELS
from moodboard.understand._few_images import FEW, maps_few
from moodboard.understand.effnet import MEAN, STD, load_model
from moodboard.understand.image import fit_rgb
from moodboard.understand.threads import cpu_bf16, side_by_side
from moodboard.understand.upload import decode_photo

_log = logging.getLogger(__name__)

#: The packaged head's weights (``detect_train`` writes them).
WEIGHTS = Path(__file__).parent / "weights" / "detector.safetensors"
#: Channels of the backbone's last feature map.
CHANNELS = 1280


class DetectorConfig(BaseModel):
    """Parameters of the object detector.

    Attributes
    ----------
    enabled
        Detect the objects of an uploaded photo sent without a crop.
    input_size
        The side of the square the photo is resized to (a multiple of 32; the head was
        trained at 320).
    threshold
        Least objectness of a detected object.
    max_objects
        Most objects returned per photo.
    nms_iou
        A box overlapping a better one by more than this IoU is dropped.
    min_side
        Least side of a returned box, in pixels of the photo.
    threads
        Threads that run parts side by side, each on one core (one op on several OpenMP
        threads was 4-50x slower next to busy processes): a photo's look (``look_at``) finds
        the objects while a second thread embeds the whole photo, then both embed a share of
        the crops; ``ObjectDetector.detect`` splits its photos between them.
    weights
        The head's safetensors file; None: the one in the package.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    input_size: int = Field(default=320, ge=128, le=640, multiple_of=32)
    threshold: float = Field(default=0.3, gt=0, lt=1)
    max_objects: int = Field(default=4, ge=1, le=16)
    nms_iou: float = Field(default=0.5, gt=0, le=1)
    min_side: int = Field(default=16, ge=8)
    threads: int = Field(default=2, ge=1)
    weights: str | None = None


def make_head(hidden: int = 96) -> Any:
    """The detection head (an ``nn.Module``): ``B x 1280 x G x G`` -> ``B x 5 x G x G``
    (objectness logit, centre x and y within the cell as logits, width and height as logits
    of the photo's shares)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(CHANNELS, hidden, 1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(hidden, 5, 1),
    )


def feature_maps(batch: np.ndarray, bf16: bool = True) -> Any:
    """The backbone's feature maps of ``B x S x S x 3`` uint8 RGB images: a float32 tensor
    ``B x 1280 x S/32 x S/32``; bf16 only on a CPU that runs it natively."""
    import torch

    bf16 = bf16 and cpu_bf16()
    if not bf16 and len(batch) <= FEW:  # a served photo: ONNX Runtime (see _few_images)
        return torch.from_numpy(maps_few(batch))
    model = load_model(batch.shape[1], bf16, True)
    with torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).float()
        std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
        x = x.mul_(1.0 / (255.0 * std)).sub_(mean / std)
        feats = model.extract_features(x.to(torch.bfloat16 if bf16 else torch.float32))
        return feats.float()


def to_input(image: Image.Image, size: int) -> np.ndarray:
    """``image`` as RGB (transparency on white), squashed to ``size x size``: uint8, as the
    image encoder prepares its inputs."""
    out = np.empty((size, size, 3), dtype=np.uint8)
    fit_rgb(image, out)
    return out


@dataclass(frozen=True)
class Detection:
    """One object found: its box ``(x, y, w, h)`` in pixels of the photo, and its
    objectness (0-1)."""

    box: tuple[int, int, int, int]
    score: float


def decode(out: np.ndarray, width: int, height: int, cfg: DetectorConfig) -> list[Detection]:
    """Boxes from one head output (``5 x G x G``) for a ``width x height`` photo."""
    heat = 1.0 / (1.0 + np.exp(-out[0]))
    g = heat.shape[0]
    padded = np.pad(heat, 1, constant_values=-1.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (3, 3))
    peaks = (heat >= windows.max(axis=(2, 3))) & (heat >= cfg.threshold)
    rows, cols = np.nonzero(peaks)
    order = np.argsort(-heat[rows, cols])
    found: list[Detection] = []
    for r, c in zip(rows[order], cols[order], strict=True):
        ox, oy, sw, sh = 1.0 / (1.0 + np.exp(-out[1:5, r, c]))
        cx, cy = (c + ox) / g * width, (r + oy) / g * height
        bw, bh = sw * width, sh * height
        x0, y0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
        x1, y1 = min(float(width), cx + bw / 2), min(float(height), cy + bh / 2)
        box = (round(x0), round(y0), round(x1 - x0), round(y1 - y0))
        box = (box[0], box[1], min(box[2], width - box[0]), min(box[3], height - box[1]))
        if min(box[2], box[3]) < cfg.min_side:
            continue
        if any(box_iou(box, d.box) > cfg.nms_iou for d in found):
            continue
        found.append(Detection(box, float(heat[r, c])))
        if len(found) == cfg.max_objects:
            break
    return found


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


class ObjectDetector:
    """Finds the products in a photo (see the module docstring).

    Parameters
    ----------
    config
        The detector's parameters; default ``DetectorConfig()``.
    """

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config
        self._head: Any = None
        self._lock = threading.Lock()
        self.metadata: dict[str, str] = {}

    @property
    def _config(self) -> DetectorConfig:
        cfg = self.config if self.config is not None else DetectorConfig()
        if not isinstance(cfg, DetectorConfig):
            raise ConfigError(
                "The 'config' parameter of ObjectDetector must be a DetectorConfig. "
                f"Got {type(cfg).__name__} instead."
            )
        return cfg

    def head(self) -> Any:
        """The head, loaded from its safetensors file on first use.

        Raises
        ------
        ConfigError
            If the weights file is missing or does not hold the head's tensors.
        """
        with self._lock:
            if self._head is None:
                self._head = self._load(Path(self._config.weights or WEIGHTS))
            return self._head

    def _load(self, path: Path) -> Any:
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = dict(fh.metadata() or {})
                state = {k: fh.get_tensor(k).float() for k in fh.keys()}  # noqa: SIM118
            head = make_head(int(meta.get("hidden", 96)))
            head.load_state_dict(state)
        except (OSError, RuntimeError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"The detector's weights at {path} are missing or not the head's tensors "
                f"({type(exc).__name__}: {exc}): reinstall moodboard or retrain them with "
                "`python -m moodboard.understand.detect_train`."
            ) from exc
        self.metadata = meta
        return head.eval()

    def detect(self, images: list[Image.Image]) -> list[list[Detection]]:
        """The objects of each photo, best first (at most ``max_objects`` each): the photos
        split between ``threads`` threads, each on one core.

        Raises
        ------
        InputError
            If an item is not a Pillow image that converts to RGB.
        """
        threads = max(1, min(self._config.threads, len(images)))
        found: dict[int, list[list[Detection]]] = {}

        def share(j: int) -> None:
            found[j] = self.detect_here(images[j::threads])

        side_by_side(share, list(range(threads)))
        out: list[list[Detection]] = [[] for _ in images]
        for j, got in found.items():
            out[j::threads] = got
        return out

    def detect_here(self, images: list[Image.Image]) -> list[list[Detection]]:
        """``detect`` on torch's current threads (the caller set them).

        Raises
        ------
        InputError
            If an item is not a Pillow image that converts to RGB.
        """
        import torch

        cfg = self._config
        if not images:
            return []
        head = self.head()
        batch = np.empty((len(images), cfg.input_size, cfg.input_size, 3), dtype=np.uint8)
        for i, im in enumerate(images):
            if not isinstance(im, Image.Image):
                raise InputError(f"image {i} is a {type(im).__name__}, not a PIL.Image.Image")
            try:
                fit_rgb(im, batch[i])
            except (OSError, ValueError) as exc:
                raise InputError(f"image {i} cannot be converted to RGB: {exc}") from exc
        with torch.inference_mode():
            out = head(feature_maps(batch)).numpy()
        return [decode(o, im.width, im.height, cfg) for o, im in zip(out, images, strict=True)]

    def __call__(self, image: Image.Image) -> list[Detection]:
        """The objects of one photo (``detect`` of one)."""
        return self.detect([image])[0]


@dataclass(frozen=True)
class PhotoLook:
    """An uploaded photo looked at once: its vector, and each object's box ``(x, y, w, h)``
    in pixels of the upright upload, objectness and vector (rows of ``object_vectors``)."""

    vector: np.ndarray
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    scores: tuple[float, ...] = ()
    object_vectors: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))
    timings_ms: dict[str, float] = field(default_factory=dict)


#: Embeds decoded images: ``list[PIL.Image] -> (n, dim)`` unit rows in the served image space.
EmbedImages = Callable[[Sequence[Image.Image]], np.ndarray]


def look_at(
    blob: bytes,
    detector: ObjectDetector,
    embed: EmbedImages,
    max_pixels: int = MAX_PIXELS,
    min_side: int = 448,
) -> PhotoLook:
    """Decode an upload once, find its objects, embed the photo and each object's crop: the
    ``detect_photo`` resource of visual search.

    Raises
    ------
    InputError
        If the bytes are not a decodable JPEG, PNG or WebP of at most ``max_pixels`` pixels.
    """
    t0 = time.perf_counter()
    image, width, height = decode_photo(blob, max_pixels, min_side)
    t1 = time.perf_counter()
    found: list[Detection] = []
    whole: list[np.ndarray] = []
    crops: dict[int, np.ndarray] = {}
    ms: dict[str, float] = {}
    threads = min(detector._config.threads, 2)
    located = threading.Event()  # set when the objects are found (or finding them failed)

    def part(j: int) -> None:
        """Part 0 finds the objects; part 1 (a second thread) embeds the photo meanwhile;
        then each embeds its share of the crops (every ``threads``-th)."""
        if j == 0:
            t = time.perf_counter()
            try:
                found.extend(detector.detect_here([image])[0])
            finally:
                located.set()
            ms["detect"] = (time.perf_counter() - t) * 1e3
        if j == 1 or threads == 1:
            t = time.perf_counter()
            whole.extend(embed([image]))
            ms["embed"] = (time.perf_counter() - t) * 1e3
        located.wait()
        mine = [d.box for d in found[j::threads]]
        if mine:
            t = time.perf_counter()
            crops[j] = embed([image.crop((x, y, x + w, y + h)) for x, y, w, h in mine])
            ms[f"embed_objects/{j}"] = (time.perf_counter() - t) * 1e3

    side_by_side(part, list(range(threads)))
    vectors = np.empty((len(found), len(whole[0])), np.float32)
    for j, rows in crops.items():
        vectors[j::threads] = rows
    sx, sy = width / image.width, height / image.height
    boxes = []
    for d in found:
        x, y, w, h = d.box
        bx, by = min(int(x * sx), width - 1), min(int(y * sy), height - 1)
        boxes.append((bx, by, min(round(w * sx), width - bx), min(round(h * sy), height - by)))
    return PhotoLook(
        whole[0],
        tuple(boxes),
        tuple(d.score for d in found),
        vectors,
        {"decode": (t1 - t0) * 1e3, **ms},
    )
