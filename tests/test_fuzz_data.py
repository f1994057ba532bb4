"""Fuzzing the batch-file parser: every hostile or broken file ends in DataError, nothing else.

Default: a modest run inside the unit-test budget. Longer: CIFAR_TEST_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz_data.py
"""

import os
import pickle
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cifar_helpers.data import CLASS_NAMES, meta_dict, read_batch, read_meta
from cifar_helpers.errors import DataError
from cifar_files import batch_dict

EXAMPLES = int(os.environ.get("CIFAR_TEST_FUZZ_EXAMPLES", "60"))
# No deadline: on a shared 2-core CI machine a slow example is not a failure (speed: benchmarks/).
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="CI" in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
VALID = pickle.dumps(batch_dict(np.zeros((2, 32, 32, 3), np.uint8), [3, 7]), protocol=3)
DANGEROUS_GLOBALS = [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                     ("builtins", "exec"), ("subprocess", "Popen"), ("numpy", "load"),
                     ("numpy.lib.npyio", "load"), ("builtins", "getattr"), ("io", "open")]


def check(tmp_path_factory, payload: bytes) -> None:
    """Parse `payload` as a batch file: a valid result or DataError naming the file."""
    path = tmp_path_factory.mktemp("fuzz") / "data_batch_1"
    path.write_bytes(payload)
    try:
        images, labels = read_batch(path)
    except DataError as error:
        assert "data_batch_1" in str(error)
    else:
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32, 3)
        assert len(labels) == len(images) and labels.min() >= 0 and labels.max() <= 9


@FUZZ
@given(cut=st.integers(0, len(VALID) - 1))
def test_truncated_batches(tmp_path_factory, cut):
    check(tmp_path_factory, VALID[:cut])


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_corrupted_batches(tmp_path_factory, flips):
    payload = bytearray(VALID)
    for position, value in flips:
        payload[position] = value
    check(tmp_path_factory, bytes(payload))


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(tmp_path_factory, payload):
    check(tmp_path_factory, payload)


scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                    st.text(max_size=8), st.binary(max_size=8))
arrays = st.builds(lambda shape, dtype: np.zeros(shape, dtype=dtype),
                   st.lists(st.integers(0, 4000), min_size=1, max_size=3).map(tuple)
                   .filter(lambda s: int(np.prod(s)) <= 100_000),
                   st.sampled_from(["uint8", "int8", "float32", "int64", "bool", "U2"]))
values = st.recursive(st.one_of(scalars, arrays),
                      lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                          st.binary(max_size=6), inner, max_size=3), max_leaves=10)


@FUZZ
@given(data=values, labels=values, extra=st.dictionaries(st.binary(max_size=6), values, max_size=2))
def test_wrong_types_and_shapes(tmp_path_factory, data, labels, extra):
    content = {**extra, b"data": data, b"labels": labels}
    check(tmp_path_factory, pickle.dumps(content, protocol=3))


@FUZZ
@given(names=values | st.lists(scalars, min_size=10, max_size=10), per_batch=values,
       drop=st.sampled_from([(), (b"label_names",), (b"num_cases_per_batch",)]))
def test_broken_meta(tmp_path_factory, names, per_batch, drop):
    """`batches.meta` with any class names and batch size: ten str names and a positive int or
    None, or a DataError naming the file."""
    content = {**meta_dict(CLASS_NAMES, 20), b"label_names": names,
               b"num_cases_per_batch": per_batch}
    path = tmp_path_factory.mktemp("fuzz") / "batches.meta"
    path.write_bytes(pickle.dumps({k: v for k, v in content.items() if k not in drop}, protocol=3))
    try:
        class_names, declared = read_meta(path)
    except DataError as error:
        assert "batches.meta" in str(error)
    else:
        assert len(class_names) == 10 and all(type(name) is str for name in class_names)
        assert declared is None or (type(declared) is int and declared > 0)


def global_call_pickle(module: str, name: str, argument: str) -> bytes:
    """A protocol-2 pickle that would call module.name(argument) when loaded without restriction."""
    return (b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n"
            + pickle.dumps(argument, protocol=2)[2:-1] + b"\x85R.")


class Calls:
    """Pickles to `function(argument)`: a payload hidden inside an otherwise normal batch dict."""

    def __init__(self, function, argument):
        self.function, self.argument = function, argument

    def __reduce__(self):
        return self.function, (self.argument,)


@pytest.mark.parametrize("target", DANGEROUS_GLOBALS)
def test_code_executing_pickles_are_refused_and_never_run(tmp_path_factory, target):
    """Refused by name when found, not merely failing when run: every target, every time."""
    marker = tmp_path_factory.mktemp("marker") / "ran"
    path = tmp_path_factory.mktemp("fuzz") / "data_batch_1"
    path.write_bytes(global_call_pickle(*target, f"touch {marker}"))
    module, name = target
    with pytest.raises(DataError, match=re.escape(f"refusing to load global {module}.{name})")):
        read_batch(path)
    assert not marker.exists()


@FUZZ
@given(key=st.sampled_from([b"data", b"labels", b"filenames"]))
def test_payload_hidden_inside_a_batch_is_refused(tmp_path_factory, key):
    marker = tmp_path_factory.mktemp("marker") / "ran"
    content = {**batch_dict(np.zeros((2, 32, 32, 3), np.uint8), [3, 7]),
               key: Calls(os.system, f"touch {marker}")}
    check(tmp_path_factory, pickle.dumps(content, protocol=3))
    assert not marker.exists()
