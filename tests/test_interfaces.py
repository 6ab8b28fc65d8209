"""Standard step interfaces: @importer, @splitter, @trainer, @evaluator and their classes."""

from __future__ import annotations

import pytest

from runstack.exceptions import DefinitionError
from runstack.pipelines import pipeline
from runstack.repository import Repository
from runstack.steps import (
    BaseEvaluatorStep,
    BaseImporterStep,
    BaseSplitterStep,
    BaseStep,
    BaseStepConfig,
    BaseTrainerStep,
    Output,
    evaluator,
    importer,
    splitter,
    step,
    trainer,
)


class SplitConfig(BaseStepConfig):
    every: int = 3


@importer
def load() -> list:
    """Numbers to learn from."""
    return list(range(10))


@splitter
def split(data: list, config: SplitConfig) -> Output(train=list, test=list):
    test = data[:: config.every]
    return [x for x in data if x not in test], test


@trainer(name="mean_trainer", enable_cache=False)
def fit(train: list) -> float:
    return sum(train) / len(train)


class Evaluate(BaseEvaluatorStep):
    def entrypoint(self, model: float, test: list) -> float:
        return sum(abs(x - model) for x in test) / len(test)


@step
def report(error: float) -> str:
    return f"mae={error:.2f}"


@pipeline
def mean_pipeline(loader, divider, learner, judge, reporter):
    train, test = divider(loader())
    error = judge(learner(train), test)
    reporter(error)


def test_roles_are_recorded_and_shown_on_step_views(repo: Repository) -> None:
    run = mean_pipeline(load(), split(), fit(), Evaluate(), report()).run()
    assert {s.name: s.role for s in run.steps} == {
        "loader": "importer",
        "divider": "splitter",
        "learner": "trainer",
        "judge": "evaluator",
        "reporter": None,
    }
    assert run.get_step("learner").entrypoint_name == "mean_trainer"
    assert run.get_step("reporter").output.read() == "mae=3.00"  # mean 4.5 of the train part
    again = mean_pipeline(load(), split(), fit(), Evaluate(), report()).run()
    importer_step = again.get_step("loader")
    assert importer_step.is_cached and importer_step.role == "importer"  # cached keeps its role
    assert not again.get_step("learner").is_cached  # enable_cache=False passed through


def test_decorators_make_typed_step_classes_like_step() -> None:
    assert issubclass(load, BaseImporterStep) and issubclass(load, BaseStep)
    assert issubclass(split, BaseSplitterStep) and issubclass(fit, BaseTrainerStep)
    assert load.ROLE == "importer" and Evaluate.ROLE == "evaluator" and report.ROLE is None
    assert load.__doc__ == "Numbers to learn from." and load.NAME == "load"
    assert fit.NAME == "mean_trainer" and fit.ENABLE_CACHE is False
    assert list(split.SIGNATURE.outputs) == ["train", "test"]
    assert split.SIGNATURE.config_class is SplitConfig
    assert split(every=2).resolve_config().every == 2


def test_signatures_that_do_not_fit_the_role_are_rejected_when_defined() -> None:
    with pytest.raises(DefinitionError, match=r"Importer 'bad'.*takes 1 input.*no inputs"):

        @importer
        def bad(x: int) -> int:
            return x

    with pytest.raises(DefinitionError, match=r"splitter takes data and returns at least two"):

        @splitter
        def halves(x: list) -> list:
            return x

    with pytest.raises(DefinitionError, match=r"trainer takes training data.*with @step"):

        @trainer
        def nothing_in() -> int:
            return 1

    with pytest.raises(DefinitionError, match=r"evaluator takes a model"):

        class NoMetrics(BaseEvaluatorStep):
            def entrypoint(self, model: float) -> None:
                pass

    with pytest.raises(DefinitionError, match=r"Evaluator 'silent'.*returns 0 output"):

        @evaluator
        def silent(model: float) -> None:
            pass

    @evaluator(name="scored")
    def score(model: float, test: list) -> Output(mae=float, n=int):
        return 0.0, len(test)

    assert issubclass(score, BaseEvaluatorStep) and score.NAME == "scored"


def test_class_based_role_steps_need_an_entrypoint() -> None:
    with pytest.raises(DefinitionError, match="has no entrypoint"):

        class Empty(BaseTrainerStep):
            pass


def test_local_annotations_resolve_for_decorated_roles() -> None:
    class Local:
        pass

    @trainer
    def uses_local(x: Local) -> Local:
        return x

    assert uses_local.SIGNATURE.inputs == {"x": Local}
