"""A–D grades from probabilities: cut-offs, validation, vectorised and scalar paths."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from models.grades import DEFAULT_CUTOFFS, GRADE_LABELS, GRADES, GradeCutoffs, grade, grade_array

pytestmark = pytest.mark.unit


def test_grade_array__puts_each_cutoff_in_the_higher_grade() -> None:
    # given the default cut-offs 0.75 / 0.50 / 0.25
    p = np.array([0.0, 0.2499999, 0.25, 0.4999999, 0.5, 0.7499999, 0.75, 1.0])

    # when graded
    grades = grade_array(p)

    # then a probability exactly on a cut-off takes the higher grade
    assert grades.tolist() == ["D", "D", "C", "C", "B", "B", "A", "A"]


def test_grade__scalar_path_agrees_with_the_vectorised_one() -> None:
    cutoffs = GradeCutoffs(a=0.6, b=0.3, c=0.1)
    p = np.linspace(0.0, 1.0, 1001)
    assert [grade(float(x), cutoffs) for x in p] == grade_array(p, cutoffs).tolist()


def test_grade_array__uses_configured_cutoffs() -> None:
    cutoffs = GradeCutoffs(a=0.2, b=0.1, c=0.05)
    assert grade_array([0.2, 0.1, 0.05, 0.049], cutoffs).tolist() == ["A", "B", "C", "D"]


def test_grade_array__keeps_the_input_shape() -> None:
    grades = grade_array(np.array([[0.9, 0.1], [0.6, 0.3]]))
    assert grades.shape == (2, 2)
    assert grades.tolist() == [["A", "D"], ["B", "C"]]


@pytest.mark.parametrize("bad", [np.nan, -0.01, 1.01, np.inf])
def test_grade_array__rejects_values_outside_zero_one_naming_the_position(bad: float) -> None:
    with pytest.raises(ValueError, match="position 2"):
        grade_array([0.1, 0.5, bad])
    with pytest.raises(ValueError, match="must be in"):
        grade(bad)


@pytest.mark.parametrize(
    ("a", "b", "c", "message"),
    [
        (0.5, 0.5, 0.25, "strictly decreasing"),
        (0.25, 0.5, 0.75, "strictly decreasing"),
        (1.0, 0.5, 0.25, "'a'"),
        (0.75, 0.5, 0.0, "'c'"),
    ],
)
def test_grade_cutoffs__must_be_strictly_decreasing_inside_zero_one(
    a: float, b: float, c: float, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        GradeCutoffs(a=a, b=b, c=c)


def test_grade_cutoffs__refuse_unknown_keys_and_round_trip_as_json() -> None:
    with pytest.raises(ValidationError, match="d"):
        GradeCutoffs.model_validate({"a": 0.8, "b": 0.5, "c": 0.2, "d": 0.1})
    dumped = DEFAULT_CUTOFFS.model_dump()
    assert dumped == {"a": 0.75, "b": 0.5, "c": 0.25}
    assert GradeCutoffs.model_validate(dumped) == DEFAULT_CUTOFFS


def test_grade_labels__cover_every_grade_in_both_languages() -> None:
    assert set(GRADE_LABELS) == set(GRADES)
    assert all(en and zh for en, zh in GRADE_LABELS.values())
