"""Step and pipeline definitions: what is accepted, and the errors raised before anything runs."""

from __future__ import annotations

import pytest

from runstack.exceptions import DefinitionError
from runstack.pipelines import BasePipeline, pipeline
from runstack.steps import BaseStep, BaseStepConfig, Output, StepContext, step


class Factor(BaseStepConfig):
    factor: int = 2
    label: str = "x"


class Required(BaseStepConfig):
    threshold: float


@step
def number() -> int:
    return 3


@step
def two() -> Output(a=int, b=float):
    return 1, 2.0


@step
def multiply(value: int, config: Factor) -> int:
    return value * config.factor


@step
def needs_threshold(value: int, config: Required) -> bool:
    return value > config.threshold


def test_step_signature_is_read_from_annotations() -> None:
    sig = multiply.SIGNATURE
    assert sig.inputs == {"value": int}
    assert sig.outputs == {"output": int}
    assert sig.config_param == "config" and sig.config_class is Factor
    assert two.SIGNATURE.outputs == {"a": int, "b": float}
    assert number.NAME == "number" and multiply.__doc__ is None


def test_decorator_forms_and_options() -> None:
    @step(name="renamed", enable_cache=False)
    def original(x: int) -> None: ...

    assert original.NAME == "renamed" and original.ENABLE_CACHE is False
    assert issubclass(original, BaseStep)


def test_class_based_step() -> None:
    class Scale(BaseStep):
        def entrypoint(self, value: int, config: Factor) -> Output(scaled=int):
            return value * config.factor

    assert Scale.NAME == "Scale"
    assert Scale.SIGNATURE.inputs == {"value": int}
    assert Scale.SIGNATURE.outputs == {"scaled": int}
    assert Scale(factor=3).resolve_config().factor == 3


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def f(x) -> int: ...", "has no type annotation"),
        ("def f(*xs: int) -> int: ...", r"takes \*xs"),
        ("def f(**kw: int) -> int: ...", r"takes \*\*kw"),
        ("def f(x: int = 3) -> int: ...", "has a default value"),
        ("def f(a: Factor, b: Factor) -> int: ...", "takes two configs"),
        ("def f(a: StepContext, b: StepContext) -> int: ...", "two StepContext"),
        ("def f(config: Factor) -> Output(config=int): ...", "both as a parameter and an output"),
        ("def f() -> Output(**{'not valid': int}): ...", "is not an identifier"),
    ],
)
def test_invalid_step_signatures_are_rejected(source: str, message: str) -> None:
    namespace = {"Factor": Factor, "StepContext": StepContext, "Output": Output}
    exec(source, namespace)
    with pytest.raises(DefinitionError, match=message):
        step(namespace["f"])


def test_class_step_without_entrypoint() -> None:
    with pytest.raises(DefinitionError, match="has no entrypoint"):

        class Nothing(BaseStep):
            pass


def test_output_needs_names() -> None:
    with pytest.raises(TypeError, match="at least one name=type"):
        Output()


def test_config_values_are_validated_when_the_step_is_created() -> None:
    assert multiply().resolve_config() == Factor()
    assert multiply(factor=5).resolve_config().factor == 5
    assert multiply(Factor(factor=4)).resolve_config().factor == 4
    assert multiply(config=Factor(factor=6)).resolve_config().factor == 6
    with pytest.raises(
        DefinitionError, match=r"factr.*Extra inputs are not permitted.*factor: int"
    ):
        multiply(factr=5)
    with pytest.raises(DefinitionError, match="factor: Input should be a valid integer"):
        multiply(factor="many")
    with pytest.raises(DefinitionError, match="has no config parameter"):
        number(factor=5)
    with pytest.raises(DefinitionError, match="expects a Factor config, got Required"):
        multiply(config=Required(threshold=1.0))
    with pytest.raises(DefinitionError, match="both config= and"):
        multiply(config=Factor(), factor=3)


def test_missing_required_config_is_reported_with_its_fields() -> None:
    instance = needs_threshold()  # may still be configured later, e.g. by with_config
    with pytest.raises(DefinitionError, match=r"threshold: Field required.*threshold: float"):
        instance.resolve_config()


def test_context_steps_are_not_cached_unless_asked() -> None:
    @step
    def reads_history(context: StepContext) -> int:
        return 1

    @step(enable_cache=True)
    def reads_history_cached(context: StepContext) -> int:
        return 1

    assert reads_history().caching_requested is False
    assert reads_history_cached().caching_requested is True
    assert number().caching_requested is True


def test_calling_a_step_outside_a_pipeline_explains_itself() -> None:
    with pytest.raises(DefinitionError, match="called outside a pipeline"):
        multiply()(1)


# --- pipelines -------------------------------------------------------------------------


@pipeline
def chain(first, second):
    second(first())


def test_pipeline_builds_an_ordered_graph() -> None:
    p = chain(first=number(), second=multiply())
    assert p.NAME == "chain"
    assert [n.slot for n in p.graph.nodes] == ["first", "second"]
    assert p.graph.node("second").upstream == ("first",)
    positional = chain(number(), multiply())
    assert [n.step.NAME for n in positional.graph.nodes] == ["number", "multiply"]


def test_class_based_pipeline() -> None:
    class Chain(BasePipeline):
        def connect(self, first, second):
            second(value=first())

    p = Chain(first=number(), second=multiply())
    assert Chain.NAME == "Chain" and Chain.STEP_SLOTS == ("first", "second")
    assert p.graph.node("second").inputs["value"].slot == "first"


def test_pipeline_decorator_options() -> None:
    @pipeline(name="custom", enable_cache=False)
    def p(first):
        first()

    assert p.NAME == "custom" and p.ENABLE_CACHE is False


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: chain(first=number()), r"missing step slot\(s\) \['second'\]"),
        (lambda: chain(number(), multiply(), third=number()), "has no step slot 'third'"),
        (
            lambda: chain(number(), multiply(), number()),
            r"has 2 step slot\(s\) \['first', 'second'\], but 3 were given",
        ),
        (lambda: chain(first=number, second=multiply()), "got the step class number"),
        (lambda: chain(first=3, second=multiply()), "must be a step instance, got int"),
    ],
)
def test_wrong_steps_for_slots(make, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        make()


def test_same_step_instance_in_two_slots() -> None:
    @pipeline
    def p(a, b):
        a()
        b()

    n = number()
    with pytest.raises(DefinitionError, match="same step instance is in slots 'a' and 'b'"):
        p(a=n, b=n)


def test_connection_errors_name_the_step_and_input() -> None:
    @pipeline
    def too_many(first, second):
        second(first(), first())

    with pytest.raises(DefinitionError, match="called twice"):
        too_many(number(), multiply())

    @pipeline
    def missing(first, second):
        first()
        second()

    with pytest.raises(DefinitionError, match=r"missing input\(s\) \['value'\]"):
        missing(number(), multiply())

    @pipeline
    def unknown_kw(first, second):
        second(amount=first())

    with pytest.raises(DefinitionError, match="has no input 'amount'"):
        unknown_kw(number(), multiply())

    @pipeline
    def constant(second):
        second(3)

    with pytest.raises(DefinitionError, match="inputs must be outputs of other steps"):
        constant(multiply())

    @pipeline
    def whole_tuple(first, second):
        second(first())

    with pytest.raises(DefinitionError, match="got all 2 outputs of step 'first' at once"):
        whole_tuple(two(), multiply())


def test_unused_slot_and_wrong_unpacking() -> None:
    @pipeline
    def unused(first, second):
        first()

    with pytest.raises(DefinitionError, match=r"\['second'\] were passed .* but never called"):
        unused(number(), multiply())

    @pipeline
    def unpack_three(first):
        a, b, c = first()

    with pytest.raises(DefinitionError, match="wrong number of names.*first returns 2"):
        unpack_three(two())

    @pipeline
    def unpack_single(first):
        a, b = first()

    with pytest.raises(DefinitionError, match="single output and cannot be unpacked"):
        unpack_single(number())


def test_incompatible_types_are_caught_when_connecting() -> None:
    @step
    def text() -> str:
        return "x"

    with pytest.raises(DefinitionError, match="expects int, but output 'output' .* str"):
        chain(first=text(), second=multiply())

    @step
    def wants_float(x: float) -> float:
        return x

    chain(first=number(), second=wants_float())  # int is acceptable where float is declared


def test_with_config_validates_slots_and_fields(tmp_path) -> None:
    p = chain(first=number(), second=multiply())
    configured = p.with_config({"steps": {"second": {"parameters": {"factor": 10}}}})
    assert configured.parameters == {"second": {"factor": 10}}
    assert p.parameters == {}  # the original is unchanged
    from runstack.exceptions import ConfigError

    with pytest.raises(ConfigError, match="names step 'third'"):
        p.with_config({"steps": {"third": {"parameters": {}}}})
    with pytest.raises(DefinitionError, match="factr"):
        p.with_config({"steps": {"second": {"parameters": {"factr": 1}}}})
    with pytest.raises(ConfigError, match="Unknown pipeline config key"):
        p.with_config({"step": {}})
    path = tmp_path / "c.yaml"
    path.write_text("steps:\n  second:\n    parameters:\n      factor: 7\n")
    assert p.with_config(str(path)).parameters == {"second": {"factor": 7}}
    path.write_text("steps: [unclosed")
    with pytest.raises(ConfigError, match="Cannot read pipeline config"):
        p.with_config(str(path))
