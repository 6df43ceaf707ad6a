"""Contrastive fine-tuning pulls judged (query, title) pairs together, on held-out pairs too."""

from __future__ import annotations

import numpy as np

from moodboard.datasets import load_home_depot
from moodboard.evaluate.search import qrels_of
from moodboard.understand.finetune import ContrastiveTrainer, FinetuneConfig
from moodboard.understand.text import TextEncoder, TextEncoderConfig


def _margin(enc: TextEncoder, pairs: list[tuple[str, str]]) -> float:
    q = enc.encode([a for a, _ in pairs])
    d = enc.encode([b for _, b in pairs])
    sims = q @ d.T
    return float(np.mean(np.diag(sims) - (sims.sum(1) - np.diag(sims)) / (len(pairs) - 1)))


def test_fine_tuning_raises_the_positive_margin_on_held_out_pairs(datasets_root, tmp_path):
    df = load_home_depot()
    titles = dict(zip(df["product_uid"].astype(str), df["product_title"].astype(str), strict=False))
    pairs = [(q, titles[p]) for q, j in qrels_of(df).items() for p, g in j.items() if g >= 1.5]
    rng = np.random.default_rng(0)
    rng.shuffle(pairs)
    train, held = pairs[:384], pairs[-200:]
    base = TextEncoder(TextEncoderConfig(bf16=False))
    path = ContrastiveTrainer(FinetuneConfig(batch_size=32, learning_rate=1e-4)).fit(
        train, tmp_path / "tuned"
    )
    assert (tmp_path / "tuned" / "model.safetensors").is_file()  # an open format, no pickle
    tuned = TextEncoder(TextEncoderConfig(model_path=str(path), bf16=False))
    assert tuned.cache_name != base.cache_name  # tuned vectors never mix with packaged ones
    assert _margin(tuned, held) > _margin(base, held) + 0.01
    # a lone query (the ONNX Runtime graph, exported from the loaded weights) is the tuned
    # model's own vector, not the packaged model's
    query = held[0][0]
    lone = tuned.encode([query])[0]
    batched = tuned.encode([query, *(b for _, b in held[:7])])[0]  # the model itself, padded
    np.testing.assert_allclose(lone, batched, atol=1e-5)
    assert float(lone @ base.encode([query])[0]) < 0.9999
