"""Layouts: field descriptions, inferring rows per sample, and flat <-> field views."""

import numpy as np
import pytest

from mfa_sklearn.exceptions import LayoutError
from mfa_sklearn.layout import Field, Layout, parse_fields

NBODY = {"pos": "point", "vel": "vector", "charge": "scalar"}


# ---------------------------------------------------------------- parse_fields
@pytest.mark.parametrize("d", [1, 2, 3])
def test_parse_fields_default_is_one_point_field(d):
    assert parse_fields(None, d) == (Field("x", "point", d),)


@pytest.mark.parametrize("spec, expected", [
    ("point", Field("x", "point", 3)),
    ("vector", Field("x", "vector", 3)),
    ("scalar", Field("x", "scalar", 1)),
    (("scalar", 4), Field("x", "scalar", 4)),
    (("vector", 3), Field("x", "vector", 3)),
    (("vector",), Field("x", "vector", 3)),
    (("scalar", np.int64(2)), Field("x", "scalar", 2)),
])
def test_parse_fields_kind_or_pair(spec, expected):
    fields = parse_fields(spec, 3)
    assert fields == (expected,)
    assert type(fields[0].width) is int


def test_parse_fields_target_default_name_is_y():
    assert parse_fields("point", 2, what="target") == (Field("y", "point", 2),)
    assert parse_fields(None, 2, what="target") == (Field("x", "point", 2),)


def test_parse_fields_dict_keeps_order_and_defaults_widths():
    fields = parse_fields({"pos": "point", "vel": "vector", "charge": "scalar",
                           "feat": ("scalar", 5), 7: ("point", None)}, 3)
    assert fields == (Field("pos", "point", 3), Field("vel", "vector", 3),
                      Field("charge", "scalar", 1), Field("feat", "scalar", 5),
                      Field("7", "point", 3))


@pytest.mark.parametrize("spec, message", [
    ({}, "must be a non-empty dict"),
    ([("pos", "point")], "must be a non-empty dict"),
    (5, "must be a non-empty dict"),
    ({"pos": "spinor"}, "field 'pos' has unknown kind 'spinor'"),
    ({"pos": ("point", 2)}, "field 'pos' of kind 'point' must have the group's width 3; "
                            "got 2"),
    ({"v": ("vector", 4)}, "field 'v' of kind 'vector' must have the group's width 3"),
    ({"q": ("scalar", 0)}, "field 'q' needs a positive integer width; got 0"),
    ({"q": ("scalar", -1)}, "needs a positive integer width"),
    ({"q": ("scalar", 2.5)}, "needs a positive integer width; got 2.5"),
    ({"q": ("scalar", True)}, "needs a positive integer width; got True"),
])
def test_parse_fields_errors(spec, message):
    with pytest.raises(LayoutError, match=message):
        parse_fields(spec, 3)
    assert issubclass(LayoutError, ValueError)


def test_parse_fields_error_names_the_parameter():
    with pytest.raises(ValueError, match=r"^target: field 'y' has unknown kind"):
        parse_fields("bond", 3, what="target")
    # "edge" is a known kind, but only groups that permute rows act on it
    with pytest.raises(ValueError, match=r"^target: field 'y' has kind 'edge', but group"):
        parse_fields("edge", 3, what="target")


# ---------------------------------------------------------------- Layout.infer
def test_infer_two_d():
    layout = Layout.infer(NBODY, 3, (35,))
    assert not layout.three_d
    assert layout.n_rows == 5
    assert layout.row_width == 7
    assert layout.n_columns == 35
    assert [f.name for f in layout.fields] == ["pos", "vel", "charge"]
    assert layout.field("vel") == Field("vel", "vector", 3)
    with pytest.raises(KeyError):
        layout.field("spin")


def test_infer_three_d():
    layout = Layout.infer(NBODY, 3, (5, 7))
    assert layout.three_d
    assert layout.n_rows == 5
    assert layout.n_columns == 35
    default = Layout.infer(None, 2, (4, 2))
    assert default.three_d and default.n_rows == 4 and default.fields == (
        Field("x", "point", 2),)


def test_infer_default_accepts_any_multiple_of_d():
    for n in (1, 2, 9):
        assert Layout.infer(None, 3, (3 * n,)).n_rows == n
    assert Layout.infer(None, 1, (7,)).n_rows == 7


def test_infer_errors():
    with pytest.raises(LayoutError, match="X has 34 columns, which the fields \\(pos: "
                                          "point x 3, vel: vector x 3, charge: scalar x "
                                          "1; 7 column\\(s\\) per row\\) cannot divide"):
        Layout.infer(NBODY, 3, (34,))
    with pytest.raises(LayoutError, match=r"X has rows of width 6, but the fields .* need "
                                          "rows of width 7"):
        Layout.infer(NBODY, 3, (5, 6))
    with pytest.raises(LayoutError, match=r"^y has 14 columns, which the target "
                                          r"\(y: point"):
        Layout.infer("point", 3, (14,), what="target", name="y")


def test_infer_rejects_samples_of_more_than_two_dimensions():
    """Samples of shape (6, 3, 1) (4-D X) have no field layout; Layout.infer must not
    read them as 6 flat columns."""
    with pytest.raises(ValueError, match=r"(?i)2-D|3-D|dimension|ndim"):
        Layout.infer(None, 3, (6, 3, 1))


# ------------------------------------------------------------------ split/join
def test_field_major_columns_on_a_hand_made_example():
    # 2 rows per sample; fields: a point of width 2, a scalar, a 2-wide scalar feature
    fields = {"p": "point", "q": "scalar", "f": ("scalar", 2)}
    # columns: p0x p0y p1x p1y | q0 q1 | f0a f0b f1a f1b
    X = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]])
    layout = Layout.infer(fields, 2, X.shape[1:])
    assert layout.n_rows == 2 and layout.row_width == 5
    parts = layout.split(X)
    np.testing.assert_array_equal(parts["p"], [[[1.0, 2.0], [3.0, 4.0]]])
    np.testing.assert_array_equal(parts["q"], [[[5.0], [6.0]]])
    np.testing.assert_array_equal(parts["f"], [[[7.0, 8.0], [9.0, 10.0]]])

    # the same sample in 3-D form: one row per point, fields side by side
    X3 = np.array([[[1.0, 2.0, 5.0, 7.0, 8.0], [3.0, 4.0, 6.0, 9.0, 10.0]]])
    layout3 = Layout.infer(fields, 2, X3.shape[1:])
    parts3 = layout3.split(X3)
    for name in parts:
        np.testing.assert_array_equal(parts3[name], parts[name])
    np.testing.assert_array_equal(layout.join(parts3), X)
    np.testing.assert_array_equal(layout3.join(parts), X3)


@pytest.mark.parametrize("three_d", [False, True])
def test_split_join_round_trip(three_d):
    rng = np.random.default_rng(0)
    shape = (5, 7) if three_d else (35,)
    layout = Layout.infer(NBODY, 3, shape)
    X = rng.normal(size=(4,) + shape)
    parts = layout.split(X)
    assert parts["pos"].shape == (4, 5, 3)
    assert parts["vel"].shape == (4, 5, 3)
    assert parts["charge"].shape == (4, 5, 1)
    joined = layout.join(parts)
    np.testing.assert_array_equal(joined, X)
    assert not np.shares_memory(joined, X)
    # leading axes (samples, frame elements) are carried along
    X_lead = rng.normal(size=(4, 2) + shape)
    parts = layout.split(X_lead)
    assert parts["vel"].shape == (4, 2, 5, 3)
    np.testing.assert_array_equal(layout.join(parts), X_lead)


def test_split_gives_views():
    layout = Layout.infer(NBODY, 3, (35,))
    X = np.zeros((2, 35))
    layout.split(X)["vel"][1, 0, 2] = 1.0
    assert X[1, 15 + 2] == 1.0
    assert np.count_nonzero(X) == 1


def test_repr():
    assert repr(Layout.infer(NBODY, 3, (35,))) == (
        "Layout(pos=pointx3, vel=vectorx3, charge=scalarx1; n_rows=5, three_d=False)")
