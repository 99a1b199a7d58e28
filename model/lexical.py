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

Fitted with scikit-learn; stored as plain arrays (`lexical.json`: the vocabularies and
settings, `lexical.npz`: idf, weights) that the engine reads without importing
scikit-learn (seconds of every worker child's start) and without unpickling code.
Its `fingerprint` is part of the version hash.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections import Counter
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from model.errors import RETRAIN, InvalidModel
from model.labels import TASKS, Task

if TYPE_CHECKING:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion

    from model.data import Example

logger = logging.getLogger(__name__)

LEXICAL_FILE = "lexical.json"
LEXICAL_ARRAYS = "lexical.npz"
# Models saved before the plain-array files: sklearn's objects, pickled (read with sklearn).
LEGACY_FILE = "lexical.joblib"
LEXICAL_FILES = (LEXICAL_FILE, LEXICAL_ARRAYS, LEGACY_FILE)
# Probabilities are floored before the logarithm: a class one model rules out
# entirely must not veto the other model.
FLOOR = 1e-6
# sklearn's default token_pattern: words of two or more word characters.
WORD_PATTERN = r"(?u)\b\w\w+\b"
WORD_TOKEN = re.compile(WORD_PATTERN)
# The vectorizer settings NgramTable reproduces (sklearn's defaults): lower-cased text as it is.
REPRODUCED = {
    "input": "content", "lowercase": True, "strip_accents": None, "preprocessor": None, "tokenizer": None,
    "stop_words": None, "token_pattern": WORD_PATTERN, "binary": False, "norm": "l2", "use_idf": True,
}  # fmt: skip


def fit_sklearn(examples: list[Example], seed: int) -> tuple[FeatureUnion, dict[Task, LogisticRegression]]:
    """The n-gram features fitted on every text, and a linear head per task on its own texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union

    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, lowercase=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
    ).fit([ex.text for ex in examples])
    heads = {}
    for task in TASKS:
        mine = [ex for ex in examples if ex.task == task]
        linear = LogisticRegression(C=5.0, max_iter=2000, class_weight="balanced", random_state=seed)
        heads[task] = linear.fit(features.transform([ex.text for ex in mine]), [ex.label for ex in mine])
        logger.info("lexical head fitted task=%s examples=%d", task, len(mine))
    return features, heads


def lexical_saved(model_dir: Path) -> bool:
    """Whether the model in model_dir has n-gram heads (in either file format)."""
    return (model_dir / LEXICAL_FILE).is_file() or (model_dir / LEGACY_FILE).is_file()


# Words whose character n-grams are kept, per vectorizer (a few MB): news repeats its words.
WORD_CACHE = 1 << 15


def word_ngrams(tokens: Sequence[str], low: int, high: int) -> list[str]:
    """Word n-grams of low..high tokens, joined by a space (as sklearn's word analyzer)."""
    return [" ".join(tokens[i : i + n]) for n in range(low, high + 1) for i in range(len(tokens) - n + 1)]


def char_wb_ngrams(word: str, low: int, high: int) -> list[str]:
    """Character n-grams of one word padded with a space each side (as sklearn's char_wb):
    a word shorter than n gives itself once, for the smallest such n only."""
    padded, grams = f" {word} ", []
    for n in range(low, high + 1):
        grams += [padded[i : i + n] for i in range(max(1, len(padded) - n + 1))]
        if len(padded) <= n:
            break
    return grams


class NgramTable:
    """One fitted TF-IDF vectorizer as plain data: how it cuts a text, its vocabulary, its idf.

    Prediction works text by text on these: sklearn's transform and predict_proba check
    their inputs on every call, about 2 ms of a one-text call.
    """

    def __init__(
        self, analyzer: str, ngram_range: tuple[int, int], terms: list[str], idf: np.ndarray, sublinear: bool
    ) -> None:
        if analyzer not in ("word", "char_wb"):
            raise ValueError(f"n-gram analyzer {analyzer!r} is not word or char_wb")
        self.analyzer, self.ngram_range, self.terms, self.sublinear = analyzer, ngram_range, terms, sublinear
        self.idf = np.asarray(idf, dtype=np.float64)
        self.vocabulary = {term: j for j, term in enumerate(terms)}
        self.offset = 0  # its first column among the features of all tables (set by LexicalModel)
        # A text's columns: word n-grams of the whole text, or character n-grams word by word.
        self.columns = self._word_ngram_columns if analyzer == "word" else self._char_ngram_columns
        self._one_word_columns = functools.lru_cache(maxsize=WORD_CACHE)(self._char_ngrams_of_word)

    def _word_ngram_columns(self, text: str) -> list[int]:
        return self._lookup(word_ngrams(WORD_TOKEN.findall(text.lower()), *self.ngram_range))

    def _char_ngram_columns(self, text: str) -> list[int]:
        # char_wb n-grams never cross a word, so a text's are its words' (of the lower-cased
        # text split on whitespace), each word's looked up once: a text's ~300 vocabulary
        # lookups were half of the n-gram heads' time.
        return list(chain.from_iterable(map(self._one_word_columns, text.lower().split())))

    def _char_ngrams_of_word(self, word: str) -> list[int]:
        return self._lookup(char_wb_ngrams(word, *self.ngram_range))

    @classmethod
    def of(cls, vectorizer: TfidfVectorizer) -> NgramTable:
        """From a fitted vectorizer, which must use only what this class reproduces."""
        differs = {k: v for k, v in vectorizer.get_params().items() if k in REPRODUCED and v != REPRODUCED[k]}
        if differs:
            raise ValueError(f"n-gram features need sklearn's defaults for {sorted(differs)}: {vectorizer!r}")
        terms = [""] * len(vectorizer.vocabulary_)
        for term, j in vectorizer.vocabulary_.items():
            terms[j] = term
        low, high = vectorizer.ngram_range
        return cls(vectorizer.analyzer, (low, high), terms, vectorizer.idf_, vectorizer.sublinear_tf)

    def _lookup(self, grams: list[str]) -> list[int]:
        return [j for j in map(self.vocabulary.get, grams) if j is not None]

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

    def settings(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer, "ngram_range": list(self.ngram_range), "sublinear": self.sublinear}


class LexicalModel:
    """N-gram features shared by both tasks (computed once per text), a linear head per task.

    Both heads are one product: a multinomial logistic regression's probabilities are the
    softmax of its decision function, so `coef` holds every head's columns side by side.
    """

    def __init__(
        self,
        tables: list[NgramTable],
        coef: np.ndarray,
        intercept: np.ndarray,
        classes: dict[Task, np.ndarray],
        n_classes: dict[Task, int],
    ) -> None:
        self.tables, self.classes, self.n_classes = tables, classes, n_classes
        offset = 0
        for table in tables:
            table.offset = offset
            offset += len(table.terms)
        self.coef = np.ascontiguousarray(coef, dtype=np.float32)  # features x every head's classes
        self.intercept = np.asarray(intercept, dtype=np.float64)
        bounds = np.cumsum([0, *(len(c) for c in classes.values())])
        self._columns = {
            task: slice(a, b) for task, a, b in zip(classes, bounds[:-1], bounds[1:], strict=True)
        }

    @classmethod
    def of(
        cls, features: FeatureUnion, heads: dict[Task, LogisticRegression], n_classes: dict[Task, int]
    ) -> LexicalModel:
        """From sklearn's fitted features and heads."""
        tables = [NgramTable.of(vectorizer) for _, vectorizer in features.transformer_list]
        coefs, intercepts = zip(*(_softmax_form(head) for head in heads.values()), strict=True)
        classes = {task: np.asarray(head.classes_, dtype=np.int64) for task, head in heads.items()}
        return cls(tables, np.vstack(coefs).T, np.concatenate(intercepts), classes, n_classes)

    @classmethod
    def fit(cls, examples: list[Example], n_classes: dict[Task, int], seed: int) -> LexicalModel:
        return cls.of(*fit_sklearn(examples, seed), n_classes)

    def probabilities(self, texts: list[str]) -> dict[Task, np.ndarray]:
        """Per task, class probabilities in class-index order (classes absent from training: 0)."""
        logits = np.tile(self.intercept, (len(texts), 1))
        for row, text in enumerate(texts):
            for table in self.tables:
                columns, weights = table.weights(text)
                logits[row] += weights @ self.coef[columns]
        out = {}
        for task, classes in self.classes.items():
            scores = logits[:, self._columns[task]]
            scores = np.exp(scores - scores.max(axis=1, keepdims=True))
            out[task] = np.zeros((len(texts), self.n_classes[task]), dtype=np.float32)
            out[task][:, classes] = scores / scores.sum(axis=1, keepdims=True)
        return out

    def _described(self) -> dict[str, Any]:
        """Everything but the arrays (the JSON file)."""
        return {
            "tables": [{**t.settings(), "terms": t.terms} for t in self.tables],
            "classes": {task: c.tolist() for task, c in self.classes.items()},
            "n_classes": self.n_classes,
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        idf = {f"idf{i}": t.idf for i, t in enumerate(self.tables)}
        return {**idf, "coef": self.coef, "intercept": self.intercept}

    def fingerprint(self) -> bytes:
        """A digest of what decides predictions."""
        digest = hashlib.sha256(json.dumps(self._described(), sort_keys=True).encode())
        for name, array in sorted(self._arrays().items()):
            digest.update(name.encode() + np.ascontiguousarray(array).tobytes())
        return digest.digest()

    def save(self, model_dir: Path) -> None:
        (model_dir / LEXICAL_FILE).write_text(json.dumps(self._described()), encoding="utf-8")
        np.savez(model_dir / LEXICAL_ARRAYS, **self._arrays())  # type: ignore[arg-type]

    @classmethod
    def load(cls, model_dir: Path) -> LexicalModel | None:
        """The directory's lexical model, or None when it has none (trained without)."""
        if not (model_dir / LEXICAL_FILE).is_file():
            return cls._load_legacy(model_dir / LEGACY_FILE)
        try:
            described = json.loads((model_dir / LEXICAL_FILE).read_bytes())
            with np.load(model_dir / LEXICAL_ARRAYS, allow_pickle=False) as arrays:
                tables = [
                    NgramTable(
                        t["analyzer"], tuple(t["ngram_range"]), t["terms"], arrays[f"idf{i}"], t["sublinear"]
                    )
                    for i, t in enumerate(described["tables"])
                ]
                coef, intercept = arrays["coef"], arrays["intercept"]
            classes = {task: np.asarray(c, dtype=np.int64) for task, c in described["classes"].items()}
            return cls(tables, coef, intercept, classes, described["n_classes"])
        except Exception as exc:  # json, numpy's zip reader and the fields each fail their own way
            remedy = f"it and {LEXICAL_ARRAYS} hold the n-gram heads; {RETRAIN}"
            raise InvalidModel.unreadable(model_dir / LEXICAL_FILE, exc, remedy) from exc

    @classmethod
    def _load_legacy(cls, path: Path) -> LexicalModel | None:
        if not path.is_file():
            return None
        import joblib

        saved = joblib.load(path)  # a pickle: load model directories you trust
        return cls.of(saved["features"], saved["heads"], saved["n_classes"])


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
