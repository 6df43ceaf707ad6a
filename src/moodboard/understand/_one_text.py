"""One text at a time through an ONNX Runtime session of the text encoder's transformer.

A search encodes one short query per request. Run eagerly, the 6-layer MiniLM spends a third of
its time in Python (the module calls, the attention-mask helpers); a frozen ``torch.jit`` trace
took 4.9 ms a query between requests on 2 cores. The same graph exported with ``torch.onnx``
(in memory, from the loaded weights, so a fine-tuned encoder runs its own) and run by ONNX
Runtime takes 2.8 ms and gives the same vector (max abs difference 1.3e-6, scratch timing on
the demo catalog's queries, 2026-12-07). The export traces one unpadded text: the mask helper
decides from the mask's values whether to mask at all, so the graph holds only for one text
at a time, which is the only place it is used; batches run through the model itself.

The model's own mean pooling and normalization, run as torch operators on a (1, tokens, 384)
output, took about 0.5 ms of a 5 ms encode (their thread team waking after ONNX Runtime's);
for one unpadded text they are a mean over the tokens and a division by the norm, done in
numpy when those are the model's modules (the same vector: a test).

A BERT-type graph is then rewritten by ONNX Runtime's transformer optimizer into its fused
operators (embedding + layer norm, one ``Attention`` per layer, ``SkipLayerNormalization``,
``BiasGelu``): 4.59 -> 4.04 ms a query on this 2-core AVX2 machine, vectors within 2e-7
(paired micro-timing over 600 queries, scratch script), for 2 s more at the export.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from transformers.utils import logging as hf_logging

#: The HF model's inputs the graph takes, in this order (those the tokenizer gives).
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: ONNX opset of the export (ONNX Runtime 1.32 runs 7..23).
_OPSET = 17

#: Per model: its session, the graph's input names, and ``_numpy_pooling(model)``.
_SESSIONS: dict[Any, tuple[ort.InferenceSession, tuple[str, ...], tuple[bool, bool]]] = {}
_LOCK = threading.Lock()


class _LastHidden(torch.nn.Module):
    """The transformer's token embeddings from positional inputs (what an export needs)."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, inputs, strict=True))).last_hidden_state


def _export(model: Any, names: tuple[str, ...], features: dict[str, Any]) -> bytes:
    """The ONNX graph of ``model``'s transformer, one text of any length (traced on
    ``features``)."""
    module = _LastHidden(model[0].auto_model, names).eval()
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its config's notes on attributes the export reads
    buf = io.BytesIO()
    try:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the mask helper's TracerWarning (see above)
            torch.onnx.export(
                module,
                tuple(features[n] for n in names),
                buf,
                input_names=list(names),
                output_names=["token_embeddings"],
                dynamic_axes={n: {1: "tokens"} for n in (*names, "token_embeddings")},
                opset_version=_OPSET,
                dynamo=False,
            )
    finally:
        hf_logging.set_verbosity(level)
    return buf.getvalue()


def _fused(graph: bytes, model: Any) -> bytes:
    """``graph`` with ONNX Runtime's fused transformer operators when ``model`` is a BERT
    (MiniLM is), else as it is."""
    config = model[0].auto_model.config
    if getattr(config, "model_type", None) != "bert":
        return graph
    import onnx
    from onnxruntime.transformers import optimizer

    for name in list(logging.root.manager.loggerDict):  # one INFO line per fusion, else
        if name.startswith(("fusion_", "onnx_model")):
            logging.getLogger(name).setLevel(logging.WARNING)
    fused = optimizer.optimize_model(
        onnx.load_model_from_string(graph),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=0,  # the fusions only; the session applies its own graph optimizations
    )
    return fused.model.SerializeToString()


def _session(model: Any, features: dict[str, Any]) -> tuple[ort.InferenceSession, tuple, tuple]:
    """The ONNX Runtime session of ``model``'s transformer (exported once per model), its
    input names, and whether its pooling runs in numpy (``_numpy_pooling``).

    Its threads are torch's count (``serve.torch_threads``); they spin within a call and stop
    at its end, so the torch work after an encode (an exact dense search) gets the cores.
    """
    with _LOCK:
        found = _SESSIONS.get(model)
        if found is None:
            names = tuple(n for n in _INPUTS if n in features)
            options = ort.SessionOptions()
            options.intra_op_num_threads = torch.get_num_threads()
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.force_spinning_stop", "1")
            options.log_severity_level = 3  # errors only
            session = ort.InferenceSession(
                _fused(_export(model, names, features), model),
                options,
                providers=["CPUExecutionProvider"],
            )
            found = _SESSIONS[model] = (session, names, _numpy_pooling(model))
        return found


#: Per model: its Rust tokenizer's copy, and ``preprocess``'s output of an empty text.
_TOKENIZERS: dict[Any, tuple[Any, dict[str, Any]]] = {}


def one_text_features(model: Any, text: str) -> dict[str, Any]:
    """``model.preprocess([text])`` for one text, from a copy of the model's Rust tokenizer
    set to truncate at ``model.max_seq_length`` (no padding: one text): the same tensors
    without the Python layers around the call (0.55 -> 0.2 ms when the caches are cold).
    Not thread-safe: callers hold the tokenizer lock, as for ``preprocess``."""
    found = _TOKENIZERS.get(model)
    if found is None:
        import tokenizers

        fast = tokenizers.Tokenizer.from_str(model[0].tokenizer.backend_tokenizer.to_str())
        fast.enable_truncation(max_length=model.max_seq_length)
        fast.no_padding()
        found = _TOKENIZERS[model] = (fast, model.preprocess([""]))
    fast, template = found
    enc = fast.encode(text)
    tensors = {
        "input_ids": enc.ids,
        "attention_mask": enc.attention_mask,
        "token_type_ids": enc.type_ids,
    }
    return {  # the keys the model's own preprocess gives, its tensors from this call
        k: torch.tensor([tensors[k]]) if k in tensors else v for k, v in template.items()
    }


def _numpy_pooling(model: Any) -> tuple[bool, bool]:
    """Whether ``model``'s modules after the transformer are a plain mean pooling, optionally
    followed by ``Normalize`` (the second flag): what one text's token embeddings can skip
    torch for."""
    from sentence_transformers.models import Normalize, Pooling

    rest = list(model)[1:]
    mean = (
        bool(rest) and isinstance(rest[0], Pooling) and rest[0].pooling_mode in ("mean", ("mean",))
    )
    if not mean or len(rest) > 2 or (len(rest) == 2 and not isinstance(rest[1], Normalize)):
        return False, False
    return True, len(rest) == 2


def embed_one(model: Any, features: dict[str, Any]) -> torch.Tensor:
    """The pooled sentence embedding ``(1, dim)`` of one text's ``features``
    (``model.preprocess([text])``), unnormalized unless the model normalizes.

    Raises
    ------
    ValueError
        If ``features`` holds more than one text.
    """
    if features["input_ids"].shape[0] != 1:
        raise ValueError(
            f"embed_one takes one text. Got {features['input_ids'].shape[0]}: batches run "
            "through the model itself (padding changes the exported graph's mask)."
        )
    session, names, (plain, normalize) = _session(model, features)
    feeds = {n: np.asarray(features[n], dtype=np.int64) for n in names}
    tokens = session.run(None, feeds)[0]
    if plain and not {"prompt_length", "token_weights_sum"} & set(features):
        # one unpadded text: every token counts
        vector = tokens.mean(axis=1)
        if normalize:
            vector /= np.maximum(np.linalg.norm(vector, axis=1, keepdims=True), 1e-12)
        return torch.from_numpy(vector)
    out = dict(features)
    out["token_embeddings"] = torch.from_numpy(tokens)
    for module in list(model)[1:]:  # pooling (and normalization) as the model declares
        out = module(out)
    return out["sentence_embedding"]
