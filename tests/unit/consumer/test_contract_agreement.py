"""The published JSON Schema and the consumer agree: proved on generated events, not assumed.

Instances are generated from the committed `contract/session_event.schema.json` with
hypothesis-jsonschema (each property from its own subschema; the object is assembled from the
schema's `properties` and `required`, because hypothesis-jsonschema 0.23's object strategy does
not run on current hypothesis). An independent validator (`jsonschema`, Draft 2020-12, format
checks on) judges each instance, the consumer's decoder judges its JSON text, and:

- every instance the schema accepts is decoded and scores to a finite probability, also when
  its integers are written the pandas way (`3.0`);
- every mutation (the bad-event catalogue, wrong types, out-of-range values, missing and unknown
  fields) gets the same verdict from both, naming the same fields.

Example counts are bounded and the runs derandomized (seeded), so `make test` stays quick and
repeatable.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from sklearn.pipeline import Pipeline

from contract.errors import ContractViolation
from contract.samples import EXAMPLE_EVENT
from contract.schema import SessionEvent
from contract.validation import parse_event
from scoring.decode import Rejection, decode_message
from scoring.scorer import ModelInfo, Scorer
from tests.unit.contract.test_schema import CATALOGUE, MISSING, Bad
from tests.unit.scoring.fakes import FakeMessage

SCHEMA_FILE = Path(__file__).resolve().parents[3] / "contract" / "session_event.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
PROPERTIES: dict[str, Any] = SCHEMA["properties"]
REQUIRED: frozenset[str] = frozenset(SCHEMA["required"])
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)
MAX_BYTES = 1 << 20
EXAMPLES = settings(
    max_examples=150,
    derandomize=True,
    database=None,  # seeded runs: nothing to remember between them
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


CATALOGUE_BASE: dict[str, Any] = dict(EXAMPLE_EVENT)


def _branches(subschema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(subschema.get("anyOf", [subschema]))


INTEGER_FIELDS = tuple(
    name
    for name, sub in PROPERTIES.items()
    if any(branch.get("type") == "integer" for branch in _branches(sub))
)
BOUNDED_FIELDS = {
    name: (branch["minimum"], branch["maximum"])
    for name, sub in PROPERTIES.items()
    for branch in _branches(sub)
    if "maximum" in branch
}


def schema_instances() -> st.SearchStrategy[dict[str, Any]]:
    """Objects the published schema accepts, built from its own properties and required list."""
    fields = {name: from_schema(sub) for name, sub in PROPERTIES.items()}
    return st.fixed_dictionaries(
        {name: s for name, s in fields.items() if name in REQUIRED},
        optional={name: s for name, s in fields.items() if name not in REQUIRED},
    )


def schema_fields(instance: dict[str, Any]) -> set[str]:
    """The fields the JSON Schema validator complains about."""
    names: set[str] = set()
    for error in VALIDATOR.iter_errors(instance):
        if error.path:
            names.add(str(error.path[0]))
        elif error.validator == "required":
            names |= REQUIRED - set(instance)
        elif error.validator == "additionalProperties":
            names |= set(instance) - set(PROPERTIES)
        else:
            names.add("<root>")
    return names


def consumer_fields(raw: bytes) -> set[str]:
    """The fields the consumer's decoder names (all of them, not only the first)."""
    try:
        parse_event(raw)
    except ContractViolation as violation:
        return {v.field for v in violation.violations}
    return set()


INFO = ModelInfo("agreement", "full", "x", 0.5)


@pytest.fixture(scope="module")
def scorer(pipeline: Pipeline) -> Scorer:
    """The consumer's Scorer (compiled path, verified) over the fitted pipeline."""
    return Scorer(pipeline, INFO)


def _decode_and_score(scorer: Scorer, instance: dict[str, Any]) -> float:
    decoded = decode_message(FakeMessage(json.dumps(instance).encode()), MAX_BYTES)
    assert not isinstance(decoded, Rejection), (instance, decoded)
    [probability] = scorer.score([decoded])
    assert math.isfinite(probability)
    assert 0.0 <= probability <= 1.0
    return float(probability)


@EXAMPLES
@given(instance=schema_instances(), as_floats=st.sets(st.sampled_from(INTEGER_FIELDS)))
def test_every_schema_instance_is_decoded_and_scored(
    scorer: Scorer, instance: dict[str, Any], as_floats: set[str]
) -> None:
    assert VALIDATOR.is_valid(instance), instance
    written = dict(instance)
    for name in as_floats:  # the pandas way: 3 -> 3.0 (the schema still calls it an integer)
        if isinstance(written[name], int):
            written[name] = float(written[name])
    assert VALIDATOR.is_valid(written)
    _decode_and_score(scorer, written)


def test_every_field_at_its_bounds_scores(scorer: Scorer, pipeline: Pipeline) -> None:
    """Each numeric field at the minimum and the maximum the schema states, all at once too."""
    base = {**CATALOGUE_BASE}
    for bound in (0, 1):
        extreme = {name: limits[bound] for name, limits in BOUNDED_FIELDS.items()}
        for name, value in extreme.items():
            instance = {**base, name: value}
            assert VALIDATOR.is_valid(instance), name
            _decode_and_score(scorer, instance)
        assert VALIDATOR.is_valid({**base, **extreme})
        _decode_and_score(scorer, {**base, **extreme})
    reference = Scorer(pipeline, INFO, compiled=False)  # the artifact itself, not the copy
    highest = {**base, **{name: limits[1] for name, limits in BOUNDED_FIELDS.items()}}
    event = SessionEvent.model_validate(highest)
    assert np.isfinite(reference.score([event])).all()


CHANGES = [bad for bad in CATALOGUE if bad.change is not None]
WRONG_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@st.composite
def mutations(draw: st.DrawFn) -> dict[str, Any]:
    """A schema-valid instance with one thing changed (which may or may not break it)."""
    instance = dict(draw(schema_instances()))
    kind = draw(st.sampled_from(["catalogue", "wrong", "range", "missing", "unknown"]))
    if kind == "catalogue":
        bad: Bad = draw(st.sampled_from(CHANGES))
        assert bad.change is not None
        for name, value in bad.change.items():
            if value is MISSING:
                instance.pop(name, None)
            else:
                instance[name] = value
    elif kind == "wrong":
        instance[draw(st.sampled_from(sorted(PROPERTIES)))] = draw(WRONG_VALUES)
    elif kind == "range":
        name = draw(st.sampled_from(sorted(BOUNDED_FIELDS)))
        low, high = BOUNDED_FIELDS[name]
        step = draw(st.one_of(st.integers(1, 10**20), st.floats(1e-6, 1e30)))
        value = high + step if draw(st.booleans()) else low - step
        instance[name] = float(value) if draw(st.booleans()) else value
    elif kind == "missing":
        instance.pop(draw(st.sampled_from(sorted(REQUIRED))))
    else:
        name = draw(st.text(min_size=1, max_size=12).filter(lambda n: n not in PROPERTIES))
        instance[name] = draw(WRONG_VALUES)
    return instance


@EXAMPLES
@given(instance=mutations())
def test_mutations_get_the_same_verdict_naming_the_same_fields(instance: dict[str, Any]) -> None:
    raw = json.dumps(instance).encode()
    assert consumer_fields(raw) == schema_fields(instance), instance


@pytest.mark.parametrize("bad", CHANGES, ids=[bad.case for bad in CHANGES])
def test_each_catalogue_change_is_rejected_by_both_naming_its_field(bad: Bad) -> None:
    instance = dict(CATALOGUE_BASE)
    assert bad.change is not None
    for name, value in bad.change.items():
        if value is MISSING:
            del instance[name]
        else:
            instance[name] = value
    with pytest.raises(ContractViolation) as caught:
        parse_event(json.dumps(instance))
    assert (caught.value.field, caught.value.rule) == (bad.field, bad.rule)
    assert schema_fields(instance) == {bad.field}
