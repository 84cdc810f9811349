import re

import pytest

from hashbench.interface import Hasher
from hashbench.registry import (
    get_method_class, list_methods, load_method_definition, make_hasher, parse_override, register_method,
    resolve_params,
)


def test_builtin_methods_registered():
    assert {"dstdh", "itq", "lsh"} <= set(list_methods())


@pytest.mark.parametrize("name", ["dstdh", "itq", "lsh"])
def test_definition_matches_constructor(name):
    definition = load_method_definition(name)
    assert set(definition.defaults) <= set(get_method_class(name).get_param_names())


def test_unknown_method_lists_known():
    with pytest.raises(ValueError, match="Registered methods: .*dstdh"):
        get_method_class("nope")


def test_duplicate_registration_rejected():
    class First(Hasher):
        def _fit(self, train, progress):
            pass

        def _encode(self, features):
            pass

    class Second(First):
        pass

    register_method("duplicate-test")(First)
    with pytest.raises(ValueError, match="registered twice"):
        register_method("duplicate-test")(Second)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("n_iter=20", ("n_iter", 20)), ("alpha=0.5", ("alpha", 0.5)), ("variant=released-code", ("variant", "released-code")),
     ("use_tags=false", ("use_tags", False)), ("variant=\"default\"", ("variant", "default"))],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_equals():
    with pytest.raises(ValueError, match="expected key=value"):
        parse_override("n_iter")


def test_unknown_override_rejected():
    with pytest.raises(ValueError, match="Unknown parameter 'n_itr' for method 'itq'"):
        resolve_params("itq", "mirflickr25k", {"n_itr": 3})


def test_override_replaces_default():
    hasher = make_hasher("itq", n_bits=16, seed=3, dataset="mirflickr25k", overrides={"n_iter": 7})
    assert hasher.get_params() == {"n_bits": 16, "seed": 3, "n_iter": 7}


@pytest.mark.parametrize(
    "override, message",
    [
        ({"n_iter": "abc"}, "Parameter 'n_iter' of method 'itq' takes an integer (default 50), got 'abc'"),
        ({"n_iter": 2.5}, "Parameter 'n_iter' of method 'itq' takes an integer (default 50), got 2.5"),
    ],
)
def test_override_of_wrong_type_is_rejected(override, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        resolve_params("itq", "mirflickr25k", override)


def test_integer_override_accepted_for_float_parameter():
    assert resolve_params("dstdh", "mirflickr25k", {"alpha": 1})["alpha"] == 1
