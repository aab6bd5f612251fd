"""The intent encoder's contrastive fine-tuning: the loss, what training does to the geometry, and the cache."""

from __future__ import annotations

import numpy as np
import pytest

from core.embeddings import embed
from core.support import _encoder

ROWS = [
    ("where is my parcel", "TRACK"), ("my package has not arrived yet", "TRACK"), ("track order 5512", "TRACK"),
    ("when will my delivery come", "TRACK"), ("is my order shipped", "TRACK"), ("delivery status please", "TRACK"),
    ("what is your refund policy", "POLICY"), ("how long do refunds take in general", "POLICY"),
    ("do you accept returns after 30 days", "POLICY"), ("what are your opening hours", "POLICY"),
    ("which payment methods do you take", "POLICY"), ("is there a fee for returns", "POLICY"),
    ("refund my order now", "REFUND"), ("i want my money back for order 7781", "REFUND"),
    ("give me a refund", "REFUND"), ("please refund the broken kettle", "REFUND"),
    ("return my payment for the late order", "REFUND"), ("charge me back, it never came", "REFUND"),
]


def _separation(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine of same-label pairs minus mean cosine of different-label pairs."""
    sim = vectors @ vectors.T
    same = np.array([[a == b for b in labels] for a in labels])
    off = ~np.eye(len(labels), dtype=bool)
    return float(sim[same & off].mean() - sim[~same].mean())


def test_the_loss_is_low_when_same_intent_messages_are_closest_and_zero_without_pairs():
    import torch

    targets = torch.tensor([0, 0, 1, 1])
    apart = torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.0, 1.0], [0.05, 1.0]], requires_grad=True)
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.05], [0.05, 1.0]], requires_grad=True)
    assert _encoder.supervised_contrastive_loss(apart, targets) < _encoder.supervised_contrastive_loss(mixed, targets)
    lonely = _encoder.supervised_contrastive_loss(apart, torch.tensor([0, 1, 2, 3]))
    assert float(lonely.detach()) == 0.0
    lonely.backward()  # still a graph: a batch of all-different intents does not crash training


def test_training_pulls_same_intent_messages_together_and_is_refused_without_data():
    texts, labels = [t for t, _ in ROWS], [label for _, label in ROWS]
    before = _separation(embed(texts), labels)
    model = _encoder.train_encoder(texts, labels, epochs=4)
    after = _separation(_encoder.encode(model, texts), labels)
    assert after > before + 0.05, (before, after)
    with pytest.raises(ValueError, match="at least two"):
        _encoder.train_encoder(["only one"], ["TRACK"])
    assert _encoder.encode(model, []).shape == (0, 384)


def test_the_tuned_encoder_is_cached_by_data_hash_and_a_torn_copy_is_trained_again(tmp_path, monkeypatch):
    from core import config

    monkeypatch.setenv("KEEL_CACHE_DIR", str(tmp_path / "cache"))
    config.reset_settings()
    monkeypatch.setattr(_encoder, "EPOCHS", 2)
    monkeypatch.setattr(_encoder, "_loaded", {})
    texts, labels = [t for t, _ in ROWS], [label for _, label in ROWS]
    messages: list[str] = []
    model = _encoder.tuned_encoder(texts, labels, log=messages.append)
    digest = _encoder.tuning_digest(texts, labels)
    folder = _encoder.encoder_dir(digest)
    assert (folder / "KEEL_COMPLETE").read_text() == digest and folder.is_relative_to(tmp_path)
    assert any("tuning the intent encoder on 18 messages" in m for m in messages)
    assert _encoder.tuning_digest(texts, labels[:-1] + ["TRACK"]) != digest  # a changed label is new data

    monkeypatch.setattr(_encoder, "_loaded", {})  # a new process: loads the saved copy, trains nothing

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although a complete copy was cached")

    real_training = _encoder.train_encoder
    monkeypatch.setattr(_encoder, "train_encoder", no_training)
    again = _encoder.tuned_encoder(texts, labels)
    assert np.allclose(_encoder.encode(again, texts), _encoder.encode(model, texts), atol=1e-5)

    weights = list(folder.rglob("*.safetensors"))
    assert weights
    for file in weights:  # torn: the weights are garbage
        file.write_bytes(b"not a model")
    monkeypatch.setattr(_encoder, "train_encoder", real_training)
    monkeypatch.setattr(_encoder, "_loaded", {})
    retrained = _encoder.tuned_encoder(texts, labels)
    assert np.allclose(_encoder.encode(retrained, texts), _encoder.encode(model, texts), atol=1e-4)
    assert (folder / "KEEL_COMPLETE").is_file()
    config.reset_settings()


def test_old_tuned_encoders_are_pruned_but_a_copy_another_process_is_writing_is_left_alone(tmp_path):
    import os
    import time

    now = time.time()
    folders = {}
    for name, age_s in [("intent-encoder-keep", 0), ("intent-encoder-a", 100), ("intent-encoder-b", 200),
                        ("intent-encoder-c", 300), ("intent-encoder-d.12.34.tmp", 10),
                        ("intent-encoder-e.56.78.tmp", 7200)]:
        folder = tmp_path / name
        folder.mkdir()
        os.utime(folder, (now - age_s, now - age_s))
        folders[name] = folder
    _encoder._prune(folders["intent-encoder-keep"])
    left = sorted(p.name for p in tmp_path.iterdir())
    # the one kept, the newest other finished copy (KEEP_ENCODERS = 2), and the .tmp being written right now
    assert left == ["intent-encoder-a", "intent-encoder-d.12.34.tmp", "intent-encoder-keep"]
