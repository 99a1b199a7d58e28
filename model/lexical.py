"""The lexical companion of the encoder: word and character n-grams, one linear model per head.

MiniLM-L6 reads meaning but misses rare surface cues that decide these
labels: tickers, "$", "Q3", "bps", company names. A TF-IDF logistic
regression on word 1-2-grams and character 2-5-grams catches them. The
engine mixes the two heads' probabilities geometrically:

    p ∝ p_encoder^(1 - w) · p_lexical^w      (w = TrainConfig.lexical_weight)

On the validation split of the default model this adds 0.5 points of topic
accuracy and 1.8 of sentiment (0.906 -> 0.911, 0.863 -> 0.881; the model card
shows the encoder alone beside the mixture). A logistic regression stacked on
both models' log-probabilities (fitted by 10-fold cross-validation on the
validation split itself) did no better than this fixed mixture. It is fitted before
the encoder, on the same training split, in about a minute on a CPU, and costs
well under a millisecond per text at inference.

Stored as `lexical.joblib` beside the weights (a pickle: load model
directories you trust, as with any sklearn model); its `fingerprint` is part
of the version hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING

import joblib
import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_union

from model.labels import TASKS, Task

if TYPE_CHECKING:
    from model.data import Example

logger = logging.getLogger(__name__)

LEXICAL_FILE = "lexical.joblib"
# Probabilities are floored before the logarithm: a class one model rules out
# entirely must not veto the other model.
FLOOR = 1e-6


def _features() -> FeatureUnion:
    return make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    )


# Words whose character n-grams are kept, per vectorizer (a few MB): news repeats its words.
WORD_CACHE = 1 << 15


class _Ngrams:
    """One fitted TfidfVectorizer applied to one text: its analyzer, vocabulary and idf."""

    def __init__(self, vectorizer: TfidfVectorizer, offset: int) -> None:
        if vectorizer.norm != "l2" or not vectorizer.use_idf:
            raise ValueError(f"n-gram features need norm='l2' and use_idf, got {vectorizer!r}")
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf: np.ndarray = vectorizer.idf_
        self.sublinear: bool = vectorizer.sublinear_tf
        self.offset = offset  # its first column among the features of all vectorizers
        self.analyze: Callable[[str], list[str]] = vectorizer.build_analyzer()
        self.columns: Callable[[str], list[int]] = self._text_columns
        if vectorizer.analyzer == "char_wb":
            # char_wb n-grams never cross a word, so a text's are its words' (of the
            # lower-cased text split on whitespace, as sklearn does), each word's looked up once:
            # a text's ~300 vocabulary lookups were half of the n-gram heads' time.
            self.prepare: Callable[[str], str] = vectorizer.build_preprocessor()
            self.word_columns = functools.lru_cache(maxsize=WORD_CACHE)(self._text_columns)
            self.columns = self._word_wise_columns

    def _text_columns(self, text: str) -> list[int]:
        return [j for j in map(self.vocabulary.get, self.analyze(text)) if j is not None]

    def _word_wise_columns(self, text: str) -> list[int]:
        return list(chain.from_iterable(map(self.word_columns, self.prepare(text).split())))

    def weights(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """The text's non-zero feature columns and their tf-idf weights (a unit vector)."""
        counts = Counter(self.columns(text))
        columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        weights = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear:
            weights = 1.0 + np.log(weights)
        weights *= self.idf[columns]
        norm = np.sqrt(weights @ weights)
        return columns + self.offset, weights / norm if norm > 0 else weights


class LexicalModel:
    """N-gram features shared by both tasks (computed once per text), a linear head per task."""

    def __init__(
        self, features: FeatureUnion, heads: dict[Task, LogisticRegression], n_classes: dict[Task, int]
    ) -> None:
        self.features, self.heads, self.n_classes = features, heads, n_classes
        # Prediction works text by text on the fitted vocabularies and a dense copy of the
        # heads' weights: sklearn's transform and predict_proba check their inputs on every
        # call, about 2 ms of a one-text call. Both heads are one product, and a multinomial
        # logistic regression's probabilities are the softmax of its decision function.
        self._ngrams, offset = [], 0
        for _, vectorizer in features.transformer_list:
            self._ngrams.append(_Ngrams(vectorizer, offset))
            offset += len(vectorizer.idf_)
        coefs, intercepts = zip(*(_softmax_form(head) for head in heads.values()), strict=True)
        self._coef = np.ascontiguousarray(np.vstack(coefs).T, dtype=np.float32)
        self._intercept = np.concatenate(intercepts)
        bounds = np.cumsum([0, *(len(head.classes_) for head in heads.values())])
        self._columns = {task: slice(a, b) for task, a, b in zip(heads, bounds[:-1], bounds[1:], strict=True)}

    @classmethod
    def fit(cls, examples: list[Example], n_classes: dict[Task, int], seed: int) -> LexicalModel:
        features = _features().fit([ex.text for ex in examples])
        for _, vectorizer in features.transformer_list:
            # The terms min_df dropped: a set, pickled in hash order, so the file (and the
            # model's version) would differ from one run to the next. Not used to predict.
            vectorizer.stop_words_ = None
        heads = {}
        for task in TASKS:
            mine = [ex for ex in examples if ex.task == task]
            linear = LogisticRegression(C=5.0, max_iter=2000, class_weight="balanced", random_state=seed)
            heads[task] = linear.fit(features.transform([ex.text for ex in mine]), [ex.label for ex in mine])
            logger.info("lexical head fitted task=%s examples=%d", task, len(mine))
        return cls(features, heads, n_classes)

    def probabilities(self, texts: list[str]) -> dict[Task, np.ndarray]:
        """Per task, class probabilities in class-index order (classes absent from training: 0)."""
        logits = np.tile(self._intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            for ngrams in self._ngrams:
                columns, weights = ngrams.weights(text)
                logits[row] += weights @ self._coef[columns]
        out = {}
        for task, head in self.heads.items():
            scores = logits[:, self._columns[task]]
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            out[task] = np.zeros((len(texts), self.n_classes[task]), dtype=np.float32)
            out[task][:, head.classes_] = scores / scores.sum(axis=1, keepdims=True)
        return out

    def fingerprint(self) -> bytes:
        """A digest of what decides predictions. Not the file's bytes: pickle output
        depends on object identity, so an equal model re-saved can differ byte for byte."""
        digest = hashlib.sha256(json.dumps(self.n_classes, sort_keys=True).encode())
        for _, vectorizer in self.features.transformer_list:
            digest.update(json.dumps(vectorizer.get_params(), sort_keys=True, default=str).encode())
            digest.update(json.dumps(sorted((k, int(v)) for k, v in vectorizer.vocabulary_.items())).encode())
            digest.update(np.ascontiguousarray(vectorizer.idf_).tobytes())
        for task in sorted(self.heads):
            head = self.heads[task]
            for array in (head.classes_, head.coef_, head.intercept_):
                digest.update(np.ascontiguousarray(array).tobytes())
        return digest.digest()

    def save(self, model_dir: Path) -> None:
        saved = {"features": self.features, "heads": self.heads, "n_classes": self.n_classes}
        joblib.dump(saved, model_dir / LEXICAL_FILE)

    @classmethod
    def load(cls, model_dir: Path) -> LexicalModel | None:
        """The directory's lexical model, or None when it has none (trained without)."""
        path = model_dir / LEXICAL_FILE
        if not path.is_file():
            return None
        saved = joblib.load(path)
        return cls(saved["features"], saved["heads"], saved["n_classes"])


def _softmax_form(head: LogisticRegression) -> tuple[np.ndarray, np.ndarray]:
    """Weights whose softmax is the head's predict_proba: a binary head's one
    logit z becomes (-z/2, z/2), since softmax of those is (1 - sigmoid z, sigmoid z)."""
    if len(head.classes_) == 2 and head.coef_.shape[0] == 1:
        coef, intercept = head.coef_ / 2, head.intercept_ / 2
        return np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
    return head.coef_, head.intercept_


def mix(encoder: np.ndarray, lexical: np.ndarray, weight: float) -> np.ndarray:
    """Geometric mixture of two rows-of-probabilities matrices, renormalised per row."""
    if weight <= 0:
        return encoder
    logp = (1 - weight) * np.log(np.maximum(encoder, FLOOR)) + weight * np.log(np.maximum(lexical, FLOOR))
    logp -= logp.max(axis=-1, keepdims=True)
    p = np.exp(logp)
    return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)
