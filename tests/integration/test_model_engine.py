"""The inference engine: round trips, agreement with the plain model, bad input."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from finpulse.errors import ConfigError
from finpulse.schema import NewsItem
from finpulse.settings import ModelSettings
from model.artifacts import ModelConfig, load_net, load_tokenizer, save_model
from model.batching import TextEncoder
from model.engine import CHECK_MARGIN, Classifier, margin
from model.errors import InvalidInput, InvalidModel, ModelNotFound
from model.evaluate import validation_examples
from model.labels import FALLBACK_TOPIC, TOPICS
from model.lexical import LEGACY_FILE, LexicalModel, NgramTable, fit_sklearn, lexical_saved, mix
from model.runtime import cpu_backends

HEADLINES = [
    "Apple shares plunge after weak iPhone sales https://t.co/abc",
    "Fed holds rates steady, signals cuts later this year",
    "$TSLA jumps 8% as deliveries beat estimates",
    "Oil prices fall on demand worries &amp; rising stockpiles",
]


@pytest.fixture(scope="module")
def val_texts(quick_model_dir: Path) -> list[str]:
    val, _, _ = validation_examples(quick_model_dir, None)
    return [e.text for e in val]


@pytest.fixture(scope="module")
def engine(quick_model_dir: Path) -> Classifier:
    return Classifier.load(quick_model_dir, device="cpu", threads=2)


def plain_labels(model_dir: Path, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The float32 network through the transformers tokenizer, padded per batch, unsorted,
    its probabilities mixed with the n-gram heads as the model's config says."""
    net, config = load_net(model_dir)
    tokenizer = load_tokenizer(model_dir)
    topics, sentiments = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), 32):
            enc = tokenizer(
                texts[i : i + 32],
                padding=True,
                truncation=True,
                max_length=config.max_length,
                return_tensors="pt",
            )
            t, s = net(enc["input_ids"], enc["attention_mask"])
            topics.append(t.softmax(-1).numpy())
            sentiments.append(s.softmax(-1).numpy())
    lexical = LexicalModel.load(model_dir)
    assert lexical is not None
    ngrams, weight = lexical.probabilities(texts), config.train["lexical_weight"]
    topic = mix(np.concatenate(topics), ngrams["topic"], weight)
    sentiment = mix(np.concatenate(sentiments), ngrams["sentiment"], weight)
    return topic.argmax(-1), sentiment.argmax(-1)


def test_predictions_have_the_contract(engine: Classifier) -> None:
    predictions = engine.predict(HEADLINES)
    assert len(predictions) == len(HEADLINES)
    for p in predictions:
        assert p.topic in TOPICS
        assert set(p.topic_probs) == set(TOPICS)
        assert sum(p.topic_probs.values()) == pytest.approx(1.0, abs=1e-4)
        assert p.topic == max(p.topic_probs, key=p.topic_probs.__getitem__)
        assert set(p.sentiment_probs) == {"negative", "neutral", "positive"}
        assert p.sentiment_score == pytest.approx(
            p.sentiment_probs["positive"] - p.sentiment_probs["negative"]
        )
        assert not p.empty


def test_optimised_engine_agrees_with_plain_model(quick_model_dir: Path, val_texts: list[str]) -> None:
    # The back end eval chose, n-gram heads and all, as the stream runs it.
    engine = Classifier.load(quick_model_dir, device="cpu", threads=2)
    plain_topic, plain_sentiment = plain_labels(quick_model_dir, val_texts)
    predictions = engine.predict(val_texts)
    topic_agree = np.mean([TOPICS.index(p.topic) == t for p, t in zip(predictions, plain_topic, strict=True)])
    sentiment_agree = np.mean(
        [
            ("negative", "neutral", "positive").index(p.sentiment) == s
            for p, s in zip(predictions, plain_sentiment, strict=True)
        ]
    )
    assert topic_agree >= 0.99, f"{engine.backend}: topic agreement {topic_agree:.4f}"
    assert sentiment_agree >= 0.99, f"{engine.backend}: sentiment agreement {sentiment_agree:.4f}"


def test_engine_mixes_the_ngram_heads_into_the_encoders(quick_model_dir: Path, val_texts: list[str]) -> None:
    # One unchecked back end for both: a checked one decides its reruns on what it mixed.
    engine = Classifier.load(quick_model_dir, backend="onnx", threads=2)
    assert engine.lexical is not None
    assert engine.lexical_weight == pytest.approx(0.4)
    alone = Classifier.load(quick_model_dir, backend="onnx", threads=2, lexical=False)
    mixed, encoder = engine.probabilities(val_texts), alone.probabilities(val_texts)
    by_task = engine.lexical.probabilities(val_texts)
    for head, task in enumerate(("topic", "sentiment")):
        ngrams = by_task[task]
        assert np.allclose(mixed[head], mix(encoder[head], ngrams, 0.4), atol=1e-5)
        # The n-gram heads learned something of their own, and the mixture moves some labels.
        labels = {e.text: e.label for e in validation_examples(quick_model_dir, None)[0] if e.task == task}
        rows = [i for i, t in enumerate(val_texts) if t in labels]
        truth = np.array([labels[val_texts[i]] for i in rows])
        majority = np.bincount(truth).max() / len(truth)
        assert (ngrams[rows].argmax(-1) == truth).mean() > majority + 0.05
        assert (mixed[head].argmax(-1) != encoder[head].argmax(-1)).any()


def test_ngram_fast_path_equals_sklearns_predict_proba(quick_model_dir: Path, tmp_path: Path) -> None:
    """The heads as plain arrays, read back from their files, give what sklearn's objects give."""
    val, _, _ = validation_examples(quick_model_dir, None)
    features, heads = fit_sklearn(val, seed=0)
    n_classes = {"topic": len(TOPICS), "sentiment": 3}
    LexicalModel.of(features, heads, n_classes).save(tmp_path)
    lexical = LexicalModel.load(tmp_path)
    assert lexical is not None
    # A model saved before the plain arrays (sklearn's objects, pickled) loads as the same heads.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    joblib.dump({"features": features, "heads": heads, "n_classes": n_classes}, legacy / LEGACY_FILE)
    assert lexical_saved(legacy)
    assert LexicalModel.load(legacy).fingerprint() == lexical.fingerprint()  # type: ignore[union-attr]
    # Character n-grams are looked up word by word: whitespace runs, tabs, capitals, accents,
    # short words, words seen before (cached) must give what sklearn gives for the whole text.
    odd = [
        "  Tesla\tQ3  EARNINGS\n\nbeat  $TSLA ",
        "tesla q3 earnings beat $tsla",
        "Ünïcödé ÀB\u00a0cd\u2003EF",
        "a I to of ok",
        "  ",
    ]
    val_texts = [ex.text for ex in val]
    texts = val_texts + odd + val_texts[:5]
    fast = lexical.probabilities(texts)
    for task, head in heads.items():
        assert np.allclose(
            fast[task][:, head.classes_], head.predict_proba(features.transform(texts)), atol=1e-5
        )
    # A head that saw two classes only (sklearn keeps one logit for those).
    x = features.transform(val_texts)
    binary = LogisticRegression(max_iter=500).fit(x, np.arange(len(val_texts)) % 2)
    two = LexicalModel.of(features, {"topic": binary}, {"topic": 20}).probabilities(val_texts)["topic"]
    assert np.allclose(two[:, :2], binary.predict_proba(x), atol=1e-5)
    assert not two[:, 2:].any()


def test_ngram_heads_refuse_vectorizer_settings_they_do_not_reproduce() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    fitted = TfidfVectorizer(strip_accents="unicode").fit(["Shares fall", "Shares rise"])
    with pytest.raises(ValueError, match="strip_accents"):
        NgramTable.of(fitted)


def test_mix_is_a_renormalised_geometric_mean() -> None:
    a = np.array([[0.7, 0.2, 0.1], [0.2, 0.3, 0.5]], dtype=np.float32)
    b = np.array([[0.1, 0.8, 0.1], [0.0, 0.0, 1.0]], dtype=np.float32)
    assert mix(a, b, 0.0) is a
    out = mix(a, b, 0.5)
    assert np.allclose(out.sum(axis=-1), 1.0)
    expected = np.sqrt(a[0] * b[0]) / np.sqrt(a[0] * b[0]).sum()
    assert np.allclose(out[0], expected, atol=1e-6)
    # A class the n-gram heads rule out entirely is weakened, not vetoed.
    assert out[1].argmax() == 2
    assert out[1][0] > 0


def test_batching_does_not_change_results(quick_model_dir: Path, val_texts: list[str]) -> None:
    # float32 back end: padding and bucketing must not move probabilities beyond rounding.
    fp32 = Classifier.load(quick_model_dir, backend="onnx", threads=2)
    texts = val_texts[:40]
    together = fp32.probabilities(texts)
    one_by_one = [fp32.probabilities([t]) for t in texts]
    for head in (0, 1):
        assert np.allclose(together[head], np.stack([o[head][0] for o in one_by_one]), atol=1e-4)


def test_save_load_round_trip_gives_identical_predictions(quick_model_dir: Path, tmp_path: Path) -> None:
    net, config = load_net(quick_model_dir)
    lexical = LexicalModel.load(quick_model_dir)
    version = save_model(
        net, load_tokenizer(quick_model_dir), ModelConfig(**config.model_dump()), tmp_path / "again", lexical
    )
    assert version == Classifier.load(quick_model_dir, backend="torch").version
    original = Classifier.load(quick_model_dir, backend="torch").probabilities(HEADLINES)
    reloaded = Classifier.load(tmp_path / "again", backend="torch").probabilities(HEADLINES)
    assert np.array_equal(original[0], reloaded[0])
    assert np.array_equal(original[1], reloaded[1])


def test_the_engine_tokenises_as_the_transformers_tokenizer(
    engine: Classifier, quick_model_dir: Path, val_texts: list[str]
) -> None:
    """The engine reads tokenizer.json itself (no transformers): the same ids, cut the same way."""
    texts = [*val_texts[:300], *HEADLINES, "word " * 400, "Ünïcödé £5bn — 株価 ok", "x"]
    expected = load_tokenizer(quick_model_dir)(texts, truncation=True, max_length=engine.max_length)
    assert engine.encoder(texts).ids == expected["input_ids"]
    assert engine.encoder(["word " * 400]).truncated == [True]


def test_special_tokens_come_from_either_tokenizer_file(quick_model_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    shutil.copy(quick_model_dir / "tokenizer.json", tmp_path)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "BertTokenizer"}))
    with pytest.raises(InvalidModel, match="name no \\[CLS\\] / \\[SEP\\]"):
        TextEncoder.from_dir(tmp_path, 128)
    # Older transformers kept them in special_tokens_map.json, as added-token objects.
    special = {name: {"content": tok, "lstrip": False} for name, tok in
               (("cls_token", "[CLS]"), ("sep_token", "[SEP]"), ("pad_token", "[PAD]"))}  # fmt: skip
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(special))
    old = TextEncoder.from_dir(tmp_path, 128)
    new = TextEncoder.from_dir(quick_model_dir, 128)
    assert (old.cls, old.sep, old.pad_id) == (new.cls, new.sep, new.pad_id) == (101, 102, 0)
    assert old(HEADLINES).ids == new(HEADLINES).ids


def test_an_onnx_engine_starts_without_torch_transformers_or_sklearn(quick_model_dir: Path) -> None:
    """Every worker child and CLI call loads the engine: torch and transformers took ~10 s of a
    child's 15 s start on a 2-core VM, sklearn ~4 s more."""
    script = f"""
import sys
from model import Classifier
engine = Classifier.load({str(quick_model_dir)!r}, device="auto")
print(engine.backend, engine.predict(["Shares plunge after profit warning"])[0].sentiment)
print(sorted(m for m in ("torch", "transformers", "sklearn") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    backend, heavy = done.stdout.splitlines()[-2:]
    assert backend.startswith("onnx-int8-checked ")
    assert heavy == "[]"


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "\x00\x07"])
def test_empty_text_gets_the_defined_result(engine: Classifier, text: str) -> None:
    (p,) = engine.predict([text])
    assert p.empty
    assert (p.topic, p.sentiment, p.sentiment_score) == (FALLBACK_TOPIC, "neutral", 0.0)
    assert p.topic_probs[FALLBACK_TOPIC] == 1.0


def test_megabyte_of_text_is_truncated_quickly(engine: Classifier) -> None:
    huge = "Markets tumble as recession fears grow. " * 26_000  # ~1 MB
    began = time.perf_counter()
    p, q = engine.predict([huge, HEADLINES[0]])
    assert time.perf_counter() - began < 5.0
    assert p.truncated
    assert not q.truncated
    alone = engine.predict([HEADLINES[0]])[0]
    assert (q.topic, q.sentiment) == (alone.topic, alone.sentiment)
    assert q.sentiment_score == pytest.approx(alone.sentiment_score, abs=0.02)


@pytest.mark.parametrize("text", ["\u200b", "\ufeff \u2060", "\u200b" * 9_000 + " "])
def test_text_the_tokenizer_drops_entirely_is_empty(engine: Classifier, text: str) -> None:
    # Format characters survive normalising; the tokenizer leaves nothing but [CLS] [SEP].
    (p,) = engine.predict([text])
    assert p.empty
    assert p.topic_probs[FALLBACK_TOPIC] == 1.0


def test_text_cut_before_normalising_is_truncated(engine: Classifier) -> None:
    # The cut at max_length * 64 characters lands inside the link: the headline is lost.
    p, q = engine.predict(["https://t.co/" + "a" * 9_000 + " Apple plunges", "Apple plunges" + " " * 9_000])
    assert p.truncated
    assert not q.truncated


def test_leading_blanks_do_not_count_against_the_raw_cut(engine: Classifier) -> None:
    p, alone = engine.predict([" " * 9_000 + "Apple plunges", "Apple plunges"])
    assert not p.empty
    assert not p.truncated
    assert (p.topic, p.sentiment) == (alone.topic, alone.sentiment)


def test_a_lone_surrogate_does_not_fail_the_batch(engine: Classifier) -> None:
    ok, odd = engine.predict(["ok", "Apple \ud83d beats"])
    alone = engine.predict(["ok", "Apple \ufffd beats"])
    assert [(p.topic, p.sentiment, p.empty) for p in (ok, odd)] == [
        (p.topic, p.sentiment, False) for p in alone
    ]


@pytest.mark.parametrize("backend", [None, "cuda"])
def test_a_cuda_device_reaches_the_runtime(
    quick_model_dir: Path, monkeypatch: pytest.MonkeyPatch, backend: str | None
) -> None:
    """cuda:1 runs on GPU 1, not on the current device (without a GPU: the move is recorded)."""
    import model.engine
    import model.runtime

    moved: list[object] = []

    class RecordingNet(torch.nn.Module):
        def to(self, *args: object, **kwargs: object) -> RecordingNet:  # type: ignore[override]
            moved.append(args[0] if args else kwargs.get("device"))
            return self

    monkeypatch.setattr(model.engine, "_cuda_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 0))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(model.runtime, "load_net", lambda model_dir: (RecordingNet(), None))
    engine = Classifier.load(quick_model_dir, device="cuda:1", backend=backend)
    assert engine.backend == (backend or "cuda-bf16")
    assert [torch.device(d) for d in moved] == [torch.device("cuda:1")]
    assert engine.runtime.device == torch.device("cuda:1")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ([None], r"texts\[0\] is NoneType"),
        (["ok", 42], r"texts\[1\] is int"),
        (["ok", b"bytes"], r"texts\[1\] is bytes"),
        ("one string", "list of str"),
        (None, "list of str"),
    ],
)
def test_non_text_input_raises_clear_error(engine: Classifier, texts: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        engine.predict(texts)  # type: ignore[arg-type]


def test_no_texts_no_predictions(engine: Classifier) -> None:
    assert engine.predict([]) == []


def test_score_stamps_model_version(engine: Classifier) -> None:
    now = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    items = [
        NewsItem(story_id=f"s{i}", source="test", title=t, published_at=now, fetched_at=now)
        for i, t in enumerate(HEADLINES[:2])
    ]
    scored = engine.score(items, now=now)
    assert [s.story_id for s in scored] == ["s0", "s1"]
    assert engine.version.startswith("ft-")
    assert all(s.model_version == engine.version and s.scored_at == now for s in scored)


def test_checked_backend_runs_the_near_ties_again_in_float32(
    quick_model_dir: Path, val_texts: list[str]
) -> None:
    checked = Classifier.load(quick_model_dir, backend="onnx-int8-checked", threads=2)
    int8 = Classifier.load(quick_model_dir, backend="onnx-int8", threads=2).probabilities(val_texts)
    float32 = Classifier.load(quick_model_dir, backend="onnx", threads=2).probabilities(val_texts)
    topic, sentiment, _, _ = checked.probabilities(val_texts)
    near = CHECK_MARGIN * (1 - checked.lexical_weight)
    unsure = (margin(int8[0]) < near) | (margin(int8[1]) < near)
    assert 0 < unsure.mean() < 0.5
    for got, fast, ref in ((topic, int8[0], float32[0]), (sentiment, int8[1], float32[1])):
        np.testing.assert_allclose(got[~unsure], fast[~unsure], atol=1e-6)
        np.testing.assert_allclose(got[unsure], ref[unsure], atol=1e-4)
    agree = (topic.argmax(-1) == float32[0].argmax(-1)) & (sentiment.argmax(-1) == float32[1].argmax(-1))
    agree_int8 = (int8[0].argmax(-1) == float32[0].argmax(-1)) & (int8[1].argmax(-1) == float32[1].argmax(-1))
    assert agree.mean() >= 0.99
    assert agree.mean() > agree_int8.mean()


def test_every_backend_loads_and_predicts(quick_model_dir: Path) -> None:
    for backend in cpu_backends():
        clf = Classifier.load(quick_model_dir, backend=backend, threads=1)
        assert clf.backend == backend
        assert [p.topic in TOPICS for p in clf.predict(HEADLINES)] == [True] * len(HEADLINES)


def test_missing_model_says_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="finpulse model train"):
        Classifier.load(tmp_path)


def test_the_backend_setting_overrides_the_cards_choice(quick_model_dir: Path) -> None:
    chosen = Classifier.from_settings(ModelSettings(model_dir=quick_model_dir, threads=1)).backend
    other = next(b for b in ("torch", "onnx") if b != chosen)
    settings = ModelSettings(model_dir=quick_model_dir, threads=1, backend=other, max_batch=256)
    clf = Classifier.from_settings(settings)
    assert (clf.backend, clf.max_batch) == (other, 256)  # a GPU takes the stream's whole batch at once
    with pytest.raises(ValueError, match="unknown back end 'tpu'"):  # settings refuse it too
        Classifier.from_settings(settings.model_copy(update={"backend": "tpu"}))


def test_a_model_swapped_in_while_loading_is_loaded_again_whole(
    quick_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """`finpulse model train` renames a new folder in while a worker's classifier reads the old one."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(quick_model_dir, model)
    load = Classifier._load.__func__  # type: ignore[attr-defined]
    calls = []

    def swapping(cls: type[Classifier], *args: object) -> Classifier:
        loaded = load(cls, *args)
        if not calls:  # the first read ends as the swap lands
            model.rename(tmp_path / "old")
            shutil.copytree(quick_model_dir, model)
        calls.append(1)
        return loaded  # type: ignore[no-any-return]

    monkeypatch.setattr(Classifier, "_load", classmethod(swapping))
    with caplog.at_level(logging.WARNING, "model.engine"):
        clf = Classifier.load(model, threads=1)
    assert len(calls) == 2
    assert "was replaced while loading; loading it again" in caplog.text
    assert clf.predict(["Shares plunge after profit warning"])[0].sentiment in (
        "negative",
        "neutral",
        "positive",
    )


def _damaged(quick_model_dir: Path, tmp_path: Path, name: str, content: bytes | None) -> Path:
    """A copy of the quick model with `name` replaced by `content` (None: removed)."""
    import shutil

    model = tmp_path / "model"
    shutil.copytree(quick_model_dir, model)
    (model / name).unlink()
    if content is not None:
        (model / name).write_bytes(content)
    return model


def _damage(quick_model_dir: Path, name: str, how: bytes | str | None) -> bytes | None:
    """The damaged file's content: given, or made from the quick model's (None: removed)."""
    import json

    if not isinstance(how, str):
        return how
    if how == "cut":
        return (quick_model_dir / name).read_bytes()[:1_000_000]
    config = json.loads((quick_model_dir / name).read_text())
    if how == "topics":
        config["topics"] = list(TOPICS[:10])
    else:  # "layers"
        config["encoder"]["num_hidden_layers"] = 4
    return json.dumps(config).encode()


# Each damage: the file, its new content (or how to make it), words of the message, the back end
# (None: the card's choice).
DAMAGES: dict[str, tuple[str, bytes | str | None, str, str | None]] = {
    "tokenizer missing": ("tokenizer.json", None, "tokenizer.json is unusable", None),
    "tokenizer garbage": ("tokenizer.json", b"{", "tokenizer.json is unusable", None),
    "config not JSON": ("config.json", b"{\n", "config.json is unusable (file: Invalid JSON", None),
    "config fields": ("config.json", b"{}", "config.json is unusable (base_model: Field required", None),
    "n-gram heads garbage": ("lexical.json", b"xx", "lexical.json is unusable", None),
    "card garbage": ("card.json", b"{bad", "card.json is unusable", None),
    "weights cut short": ("model.safetensors", "cut", "model.safetensors is unusable", "onnx"),
    "other labels": ("config.json", "topics", "where config.json names 10 topic and 3 sentiment", None),
    "other encoder shape": ("config.json", "layers", "its shapes are not config.json's", "torch"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_model_file_is_named_with_what_to_do(
    quick_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    """Not the traceback of the library that read it, nor a model that loads and then fails on
    every prediction; and no "loaded" line before the failure."""
    name, how, words, backend = DAMAGES[damage]
    model = _damaged(quick_model_dir, tmp_path, name, _damage(quick_model_dir, name, how))
    with caplog.at_level(logging.INFO, "model.engine"), pytest.raises(InvalidModel) as caught:
        Classifier.load(model, backend=backend, threads=1)
    message = str(caught.value)
    assert str(model) in message
    assert words in message
    assert ("finpulse model eval" if name == "card.json" else "finpulse model train") in message
    assert isinstance(caught.value, ModelNotFound)  # handled as a missing model is
    assert "classifier loaded" not in caplog.text


def test_a_damaged_model_fails_the_cli_with_its_message_and_exit_code_2(
    quick_model_dir: Path, tmp_path: Path
) -> None:
    model = _damaged(quick_model_dir, tmp_path, "lexical.json", b"xx")
    done = subprocess.run(
        [sys.executable, "-m", "finpulse.cli", "model", "predict", "--model", str(model), "Shares plunge"],
        capture_output=True, text=True, timeout=120, env={"COLUMNS": "400", "PATH": ""},
    )  # fmt: skip
    out = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 2, out
    assert f"error: {model / 'lexical.json'} is unusable" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(
    ("device", "backend", "message"),
    [
        ("cuda", "onnx", "device cuda with back end onnx, which runs on the CPU"),
        ("cuda:1", "torch-int8", "device cuda:1 with back end torch-int8, which runs on the CPU"),
        ("cpu", "cuda-bf16", "device cpu with back end cuda-bf16, which runs on a GPU"),
    ],
)
def test_a_device_and_backend_at_odds_are_refused(
    quick_model_dir: Path, device: str, backend: str, message: str
) -> None:
    """Before: device cuda with FINPULSE_MODEL_BACKEND=onnx ran on the CPU, saying nothing."""
    settings = ModelSettings(model_dir=quick_model_dir, device=device, backend=backend, threads=1)
    with pytest.raises(ConfigError, match=message):
        Classifier.from_settings(settings)
