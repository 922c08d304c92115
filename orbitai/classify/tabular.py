"""Classifiers over feature vectors (radiomics, clinical): the three learners of paper 001 (SVM,
logistic regression, random forest) as scikit-learn pipelines with standardisation, seeded."""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from orbitai.errors import InputError

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

TabularKind = Literal["svm", "logreg", "rf"]
TABULAR_KINDS: tuple[str, ...] = ("svm", "logreg", "rf")


def tabular_classifier(kind: TabularKind = "svm", seed: int = 0) -> Pipeline:
    """Standardise, then ``svm`` (RBF SVC, Platt-scaled probabilities), ``logreg`` (L2 logistic regression)
    or ``rf`` (500-tree random forest); ``predict_proba`` gives (N, 2) like the image models."""
    # scikit-learn imported here: a second at start-up that the commands' parsers need not pay

    if kind == "svm":
        # Platt scaling over 5 folds, as SVC(probability=True) did before scikit-learn 1.9 deprecated it
        model = CalibratedClassifierCV(SVC(kernel="rbf", random_state=seed), method="sigmoid", cv=5,
                                       ensemble=False)
    elif kind == "logreg":
        model = LogisticRegression(max_iter=5000, random_state=seed)
    elif kind == "rf":
        model = RandomForestClassifier(n_estimators=500, random_state=seed)
    else:
        raise InputError(f"Unknown tabular classifier {kind!r}; use one of {list(TABULAR_KINDS)}.")
    return Pipeline([("scale", StandardScaler()), (kind, model)])
