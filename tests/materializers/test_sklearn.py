"""scikit-learn estimators through skops (no code run on load); pickle only as a fallback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from runstack.exceptions import MaterializerError
from runstack.materializers import Artifact, SklearnMaterializer
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import BaseStepConfig, step

X, Y = load_iris(return_X_y=True)


class Clip(TransformerMixin, BaseEstimator):
    """A user's own transformer: skops stores it, recording that it must be trusted."""

    def __init__(self, high: float = 5.0) -> None:
        self.high = high

    def fit(self, x: Any, y: Any = None) -> Clip:
        self.seen_ = np.asarray(x).shape[1]
        return self

    def transform(self, x: Any) -> Any:
        return np.minimum(x, self.high)


class Opaque(BaseEstimator):
    """Holds something skops cannot store (a complex number), so only pickle can."""

    def fit(self, x: Any, y: Any = None) -> Opaque:
        self.phase_ = complex(0.0, float(np.asarray(x).mean()))
        return self


def fitted_models() -> dict[str, Any]:
    cat = np.array([["a"], ["b"], ["a"]] * 50)
    return {
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y),
        "forest": RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y),
        "custom step": make_pipeline(Clip(3.0), LogisticRegression(max_iter=500)).fit(X, Y),
        "column transformer": Pipeline(
            [
                ("cols", ColumnTransformer([("oh", OneHotEncoder(), [0])])),
                ("lr", LogisticRegression()),
            ]
        ).fit(cat, Y),
    }


@pytest.mark.parametrize("name", list(fitted_models()))
def test_fitted_models_predict_the_same_after_reload(
    name: str, roundtrip: Callable[..., Any], tmp_path: Path
) -> None:
    model = fitted_models()[name]
    data = np.array([["a"], ["b"]]) if name == "column transformer" else X
    back = roundtrip(model)
    assert type(back) is type(model)
    np.testing.assert_array_equal(back.predict(data), model.predict(data))
    np.testing.assert_allclose(back.predict_proba(data), model.predict_proba(data))


def test_skops_is_used_and_user_types_are_recorded(tmp_path: Path) -> None:
    model = fitted_models()["custom step"]
    SklearnMaterializer(Artifact(str(tmp_path))).handle_return(model)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["format"] == "skops" and (tmp_path / "model.skops").exists()
    assert meta["trusted"] == [f"{__name__}.Clip"]  # sklearn's own types need no entry
    assert meta["class"] == "sklearn.pipeline.Pipeline"


def test_a_file_asking_for_unrecorded_types_is_refused(tmp_path: Path) -> None:
    art = Artifact(str(tmp_path))
    SklearnMaterializer(art).handle_return(fitted_models()["custom step"])
    meta = json.loads((tmp_path / "meta.json").read_text())
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "trusted": []}))
    with pytest.raises(MaterializerError, match=r"not recorded.*Clip.*TRUSTED_MODULES"):
        SklearnMaterializer(art).handle_input(Pipeline)


def test_unfitted_estimators_round_trip(roundtrip: Callable[..., Any]) -> None:
    back = roundtrip(LogisticRegression(C=0.3, max_iter=77))
    assert back.get_params() == LogisticRegression(C=0.3, max_iter=77).get_params()


def test_pickle_is_the_logged_fallback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    art = Artifact(str(tmp_path))
    writer, reader = SklearnMaterializer(art), SklearnMaterializer(art)
    with caplog.at_level("WARNING", logger="runstack"):
        writer.handle_return(Opaque().fit(X))
    assert "storing it with pickle" in caplog.text
    assert json.loads((tmp_path / "meta.json").read_text())["format"] == "pickle"
    assert writer.storage_format == "pickle"
    reader.recorded_format = "pickle"
    back = reader.handle_input(Opaque)
    assert isinstance(back, Opaque) and back.phase_ == Opaque().fit(X).phase_


class TrainConfig(BaseStepConfig):
    trees: int = 4


@step
def train_forest(config: TrainConfig) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=config.trees, random_state=1).fit(X, Y)


@step
def accuracy(model: BaseEstimator) -> float:
    return float((model.predict(X) == Y).mean())


@pipeline
def forest_pipeline(train, evaluate):
    evaluate(train())


def test_models_flow_between_steps_and_read_back(repo: Repository) -> None:
    run = forest_pipeline(train_forest(), accuracy()).run()
    model = run.get_step("train").output.read()
    assert isinstance(model, RandomForestClassifier) and model.n_estimators == 4
    expected = RandomForestClassifier(n_estimators=4, random_state=1).fit(X, Y)
    np.testing.assert_array_equal(model.predict(X), expected.predict(X))
    assert run.get_step("evaluate").output.read() == float((expected.predict(X) == Y).mean())
