"""Randomised hyper-parameter search over several estimator families.

Each family (logistic regression, random forest, XGBoost) is wrapped in the contract's
``build_pipeline`` so cleaning and feature engineering are refitted inside every CV fold, and
searched with its own ``RandomizedSearchCV`` (stratified k-fold, average precision). The best
family by mean CV score wins. Class imbalance is handled inside each estimator
(``class_weight="balanced"`` or XGBoost's ``scale_pos_weight``), not by resampling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler, RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from tqdm import tqdm
from xgboost import XGBClassifier

from contract.pipeline import Variant, build_pipeline

logger = logging.getLogger(__name__)

__all__ = ["FAMILIES", "Family", "SearchResult", "families", "run_search"]

SCORING = "average_precision"
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Family:
    """One estimator family: the base estimator and its ``model__*`` distributions."""

    name: str
    estimator: Any
    distributions: Mapping[str, Any]


@dataclass(frozen=True)
class SearchResult:
    variant: Variant
    family: str
    best_pipeline: Pipeline  # refit on the whole training split
    unfitted_pipeline: Pipeline  # same parameters, not fitted (for out-of-fold predictions)
    best_params: dict[str, Any]
    best_cv_score: float
    family_scores: dict[str, float]
    n_candidates: int


FAMILIES: tuple[str, ...] = ("logistic_regression", "random_forest", "xgboost")


def families(y_train: pd.Series, seed: int) -> list[Family]:
    """The families and their search spaces; ``scale_pos_weight`` is negatives / positives."""
    positives = int(y_train.sum())
    negatives = len(y_train) - positives
    if positives == 0 or negatives == 0:
        raise ValueError(f"the training split needs both classes, got {positives} positives")
    ratio = negatives / positives
    return [
        Family(
            "logistic_regression",
            LogisticRegression(class_weight="balanced", max_iter=5000, random_state=seed),
            {"model__C": loguniform(1e-3, 1e2)},
        ),
        Family(
            "random_forest",
            RandomForestClassifier(class_weight="balanced", n_jobs=1, random_state=seed),
            {
                # Bounded trees and leaves: a forest of deep trees on ~10k rows costs
                # minutes per candidate on two cores without scoring better.
                "model__n_estimators": randint(100, 300),
                "model__max_depth": [6, 10, 14, 20],
                "model__min_samples_leaf": randint(2, 20),
                "model__max_features": ["sqrt", 0.25],
                "model__max_samples": [0.5, 0.75, None],  # bootstrap size: cost vs variance
                "model__class_weight": ["balanced", "balanced_subsample"],
            },
        ),
        Family(
            "xgboost",
            XGBClassifier(
                scale_pos_weight=ratio,
                tree_method="hist",
                eval_metric="aucpr",
                n_jobs=1,
                random_state=seed,
            ),
            {
                "model__n_estimators": randint(100, 600),
                "model__learning_rate": loguniform(0.01, 0.2),
                "model__max_depth": randint(2, 7),
                "model__min_child_weight": loguniform(1.0, 20.0),
                "model__subsample": uniform(0.6, 0.4),
                "model__colsample_bytree": uniform(0.5, 0.5),
                "model__reg_lambda": loguniform(0.1, 10.0),
            },
        ),
    ]


class ProgressSearchCV(RandomizedSearchCV):  # type: ignore[misc]
    """``RandomizedSearchCV`` that evaluates its candidates in batches of ``chunk`` and calls
    ``progress(n_done_in_batch)`` after each, so a long search shows progress. It samples the
    same candidates as the parent; ``chunk = n_jobs`` keeps every worker busy."""

    def __init__(
        self,
        estimator: Any,
        param_distributions: Mapping[str, Any],
        *,
        n_iter: int = 10,
        scoring: str | None = None,
        n_jobs: int | None = None,
        refit: bool = True,
        cv: Any = None,
        random_state: int | None = None,
        error_score: Any = np.nan,
        chunk: int = 2,
        progress: ProgressFn | None = None,
    ) -> None:
        super().__init__(
            estimator,
            param_distributions,
            n_iter=n_iter,
            scoring=scoring,
            n_jobs=n_jobs,
            refit=refit,
            cv=cv,
            random_state=random_state,
            error_score=error_score,
        )
        self.chunk = chunk
        self.progress = progress

    def _run_search(self, evaluate_candidates: Callable[..., dict[str, Any]]) -> None:
        candidates = list(
            ParameterSampler(self.param_distributions, self.n_iter, random_state=self.random_state)
        )
        step = max(1, self.chunk)
        for start in range(0, len(candidates), step):
            batch = candidates[start : start + step]
            evaluate_candidates(batch)
            if self.progress is not None:
                self.progress(len(batch))


def run_search(
    X_train: pd.DataFrame,
    y_train: pd.Series,
    variant: Variant,
    *,
    n_iter: int,
    seed: int,
    cv: StratifiedKFold,
    n_jobs: int = 2,
    family_names: Iterable[str] = FAMILIES,
) -> SearchResult:
    """Search every family with ``n_iter`` candidates; return the best, refit on the split."""
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}")
    wanted = set(family_names)
    chosen = [family for family in families(y_train, seed) if family.name in wanted]
    if not chosen:
        raise ValueError(f"no known estimator family in {sorted(wanted)}; known: {FAMILIES}")
    total = n_iter * len(chosen)
    searches: dict[str, ProgressSearchCV] = {}
    with tqdm(total=total, desc=f"search {variant}", unit="candidate", disable=None) as bar:
        for family in chosen:
            done = 0

            def progress(n: int, family: Family = family) -> None:
                nonlocal done
                done += n
                bar.update(n)
                logger.info(
                    "search variant=%s family=%s candidates=%d/%d",
                    variant,
                    family.name,
                    done,
                    n_iter,
                )

            search = ProgressSearchCV(
                build_pipeline(family.estimator, variant),
                dict(family.distributions),
                n_iter=n_iter,
                scoring=SCORING,
                cv=cv,
                n_jobs=n_jobs,
                refit=False,  # only the winning family is refit, below
                random_state=seed,
                error_score="raise",
                chunk=n_jobs,
                progress=progress,
            )
            search.fit(X_train, y_train)
            searches[family.name] = search
            logger.info(
                "search done variant=%s family=%s best_%s=%.4f",
                variant,
                family.name,
                SCORING,
                search.best_score_,
            )
    scores = {name: float(search.best_score_) for name, search in searches.items()}
    best_name = max(scores, key=lambda name: scores[name])
    best = searches[best_name]
    unfitted = build_pipeline(_fresh(chosen, best_name), variant)
    unfitted.set_params(**best.best_params_)
    best_params = _jsonable(best.best_params_)
    logger.info("refit variant=%s family=%s params=%s", variant, best_name, best_params)
    fitted = clone(unfitted).fit(X_train, y_train)
    return SearchResult(
        variant=variant,
        family=best_name,
        best_pipeline=fitted,
        unfitted_pipeline=unfitted,
        best_params=best_params,
        best_cv_score=scores[best_name],
        family_scores=scores,
        n_candidates=total,
    )


def _fresh(chosen: list[Family], name: str) -> Any:
    return clone(next(family.estimator for family in chosen if family.name == name))


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    """Search parameters as plain JSON values (numpy scalars become Python numbers)."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            out[key] = value.item()
        elif value is None or isinstance(value, str | int | float | bool):
            out[key] = value
        else:
            out[key] = repr(value)
    return out
