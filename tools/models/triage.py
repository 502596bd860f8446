"""A small local text classifier for triage, fitted on an agent's labelled examples.

The keyless `local` provider uses it to sort a customer's message into the agent's triage
labels (for `support`: `general` and what must go to a person first) with no model and no
network. It is fitted once per worker process, on first use, from a JSON-lines file of
``{"text": ..., "label": ...}`` records (`TriageModels`).

Features. Stems (`tools.text.stem`) of every lowercase word, stopwords kept ("my" says a
message is about one account), their adjacent pairs, and the character 3- to 5-grams of
the lowercased text with runs of whitespace made one space (they survive typos and
inflections the stemmer misses). Features found in fewer than two examples are dropped.
Each is weighted by TF-IDF with a log term frequency, ``1 + log(count)``, and a smoothed
inverse document frequency, ``1 + log((1 + N) / (1 + df))``; each vector is L2-normalised.

Model. Softmax regression with a bias, L2 penalty 1e-4 on the weights, fitted by 300 steps
of full-batch gradient descent with learning rate 5 from zero. The gradient step keeps the
weights a combination of the examples (``W = Xᵀ A``), so it runs on the N × N kernel
``X Xᵀ + 1`` (the 1 is the bias) and never on the vocabulary: the N × C matrix ``A`` is
updated, and ``W`` formed once at the end. The kernel is built row by row from each
example's few non-zero features.

Decision. `classify` names the most probable label, except that the `default` label (the
one that needs nobody) must reach probability `min_default`: below it, the most probable
other label wins. Its confidence is the probability of the label it names.
"""

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

import numpy as np
import numpy.typing as npt

from keel.errors import KeelUserError
from tools.text import stem

__all__ = ["TriageClassifier", "TriageModels"]

_WORD = re.compile(r"[a-z0-9]+")
_CHAR_NGRAMS = (3, 4, 5)
_MIN_DF = 2
_L2 = 1e-4
_LEARNING_RATE = 5.0
_STEPS = 300

_Floats = npt.NDArray[np.float32]


def _features(text: str) -> Counter[str]:
    lowered = text.lower()
    words = [stem(w) for w in _WORD.findall(lowered)]
    squeezed = " ".join(lowered.split())
    return Counter(
        [
            *(f"w {w}" for w in words),
            *(f"b {a} {b}" for a, b in zip(words, words[1:], strict=False)),
            *(
                f"c{squeezed[i : i + n]}"
                for n in _CHAR_NGRAMS
                for i in range(len(squeezed) - n + 1)
            ),
        ]
    )


class TriageClassifier:
    """A fitted classifier: TF-IDF features and softmax weights over its labels."""

    def __init__(
        self, labels: Sequence[str], vocabulary: dict[str, int], idf: _Floats, weights: _Floats
    ) -> None:
        self.labels = tuple(labels)
        self._vocabulary = vocabulary
        self._idf = idf
        self._weights = weights  # labels × (features + bias)

    @classmethod
    def fit(cls, texts: Sequence[str], labels: Sequence[str]) -> Self:
        """Fit on `texts` labelled `labels` (the module docstring says how).

        Raises:
            KeelUserError: Not one label per text, or fewer than two distinct labels.

        """
        if len(texts) != len(labels) or len(set(labels)) < 2:
            raise KeelUserError("triage examples need a label for each text and two labels")
        counted = [_features(t) for t in texts]
        df: Counter[str] = Counter()
        for c in counted:
            df.update(c.keys())
        kept = sorted(f for f, n in df.items() if n >= _MIN_DF)
        vocabulary = {f: i for i, f in enumerate(kept)}
        n = len(texts)
        idf = np.array([1.0 + math.log((1 + n) / (1 + df[f])) for f in kept], dtype=np.float32)
        model = cls(sorted(set(labels)), vocabulary, idf, np.zeros((0, 0), np.float32))
        rows = [model._sparse(c) for c in counted]
        columns = np.zeros((len(kept), n), dtype=np.float32)  # Xᵀ, a row per feature
        for i, (index, value) in enumerate(rows):
            columns[index, i] = value
        kernel = np.empty((n, n), dtype=np.float32)
        for i, (index, value) in enumerate(rows):
            kernel[i] = value @ columns[index]
        kernel += 1.0
        target = np.zeros((len(model.labels), n), dtype=np.float32)
        target[[model.labels.index(label) for label in labels], np.arange(n)] = 1.0
        dual = np.zeros_like(target)  # Aᵀ, labels × examples
        for _ in range(_STEPS):
            # One matrix-vector product per label: BLAS runs those on one thread, where a
            # small matrix product starts its threads 300 times (seconds on a busy machine).
            scores = np.stack([kernel @ row for row in dual])  # Aᵀ K, the kernel symmetric
            gradient = (_softmax(scores) - target) / n + _L2 * dual
            dual -= _LEARNING_RATE * gradient
        weights = dual @ columns.T
        model._weights = np.hstack([weights, dual.sum(axis=1, keepdims=True)])
        return model

    @classmethod
    def from_jsonl(cls, path: Path) -> Self:
        """Fit on the ``{"text", "label"}`` records of the JSON-lines file at `path`."""
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return cls.fit([r["text"] for r in records], [r["label"] for r in records])

    def probabilities(self, text: str) -> dict[str, float]:
        """Each label's probability for `text`."""
        index, value = self._sparse(_features(text))
        scores = self._weights[:, index] @ value + self._weights[:, -1]
        return dict(zip(self.labels, _softmax(scores[:, None])[:, 0].tolist(), strict=True))

    def classify(self, text: str, *, default: str, min_default: float = 0.5) -> tuple[str, float]:
        """The label of `text` and its probability; `default` only from `min_default` up."""
        probabilities = self.probabilities(text)
        if probabilities[default] >= min_default:
            return default, probabilities[default]
        label = max((p, label) for label, p in probabilities.items() if label != default)[1]
        return label, probabilities[label]

    def _sparse(self, counted: Counter[str]) -> tuple[npt.NDArray[np.intp], _Floats]:
        vocabulary = self._vocabulary
        known = [(vocabulary[f], c) for f, c in counted.items() if f in vocabulary]
        pairs = np.array(known, dtype=np.intp).reshape(-1, 2)
        index: npt.NDArray[np.intp] = pairs[:, 0]
        value = (1.0 + np.log(pairs[:, 1].astype(np.float32))) * self._idf[index]
        norm = float(np.linalg.norm(value))
        return index, (value / norm if norm else value).astype(np.float32)


def _softmax(scores: _Floats) -> _Floats:
    """Column-wise: each column holds one example's scores for every label."""
    shifted = np.exp(scores - scores.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


class TriageModels:
    """A worker's triage classifiers by name, each fitted on first use and then kept."""

    def __init__(self, examples: Mapping[str, Path]) -> None:
        self._examples = dict(examples)
        self._fitted: dict[str, TriageClassifier] = {}
        self._fitting = threading.Lock()

    def get(self, name: str) -> TriageClassifier | None:
        """The classifier fitted on `name`'s examples; None when there are none."""
        if name not in self._examples:
            return None
        with self._fitting:
            if name not in self._fitted:
                self._fitted[name] = TriageClassifier.from_jsonl(self._examples[name])
        return self._fitted[name]
