"""Every exception class lives in pytest_edgeai.errors, and each one raised in an isolated worker reaches
the test as the same type, with the same message and attributes (a MeterError stays a MeterError, not a
plain EdgeAIError)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from pytest_edgeai import errors
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import (
    ConfigError,
    DeviceUnavailable,
    EdgeAIError,
    MeterError,
    PlanError,
    RuntimeFailure,
    SplitExecutionError,
    from_wire,
    to_wire,
)
from pytest_edgeai.lab.runners import IsolatedRunner
from pytest_edgeai.lab.work import CallRequest

PACKAGE = Path(errors.__file__).parent


def test_no_exception_class_is_defined_outside_errors_py() -> None:
    def is_exception(node: ast.ClassDef) -> bool:
        names = {b.id if isinstance(b, ast.Name) else b.attr for b in node.bases
                 if isinstance(b, (ast.Name, ast.Attribute))}
        return any(n.endswith(("Error", "Exception", "Failure", "Unavailable", "Crashed", "Lost", "Closed"))
                   or n in vars(errors) for n in names)

    elsewhere = [f"{path.relative_to(PACKAGE)}:{node.name}"
                 for path in PACKAGE.rglob("*.py") if path.name != "errors.py"
                 for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.ClassDef) and is_exception(node)]
    assert elsewhere == []


EVERY_ERROR = sorted((cls for cls in vars(errors).values()
                      if isinstance(cls, type) and issubclass(cls, EdgeAIError)), key=lambda c: c.__name__)


def example(cls: type[EdgeAIError]) -> EdgeAIError:
    """An instance of ``cls`` made as the code that raises it makes one."""
    params = list(inspect.signature(cls.__init__).parameters)[1:]
    if cls is ConfigError:
        return ConfigError(["devices.x.kind: bad", "devices.y.backend: bad"])
    if cls is SplitExecutionError:
        return SplitExecutionError("the edge stage died", partial=[1.5, 2.5])
    assert params in (["args", "kwargs"], ["detail"]), f"{cls.__name__} takes {params}: add it here"
    return cls(f"{cls.__name__} happened")


@pytest.mark.parametrize("cls", EVERY_ERROR, ids=lambda c: c.__name__)
def test_each_error_survives_the_wire_as_itself(cls: type[EdgeAIError]) -> None:
    sent = example(cls)
    back = from_wire(*to_wire(sent))
    assert type(back) is cls and str(back) == str(sent) and vars(back) == vars(sent)


def test_a_plug_ins_own_error_arrives_as_the_nearest_class_of_ours() -> None:
    class AcceleratorGone(DeviceUnavailable):  # what a lab's backend might raise
        pass

    back = from_wire(*to_wire(AcceleratorGone("usb:0 went away")))
    assert type(back) is DeviceUnavailable and str(back) == "usb:0 went away"


def raise_meter_error() -> None:
    raise MeterError("tegrastats exited with status 1")


def raise_plan_error() -> None:
    raise PlanError("no plan keeps the input on the device within 10 ms")


def raise_split_error() -> None:
    raise SplitExecutionError("the cloud stage died", partial=[3.0])


def raise_runtime_failure() -> None:
    raise RuntimeFailure("vendor.Error: bad tensor")


@pytest.mark.parametrize("study, cls", [(raise_meter_error, MeterError), (raise_plan_error, PlanError),
                                        (raise_split_error, SplitExecutionError),
                                        (raise_runtime_failure, RuntimeFailure)])
def test_an_error_raised_in_the_isolated_worker_reaches_the_caller_as_its_type(study, cls) -> None:
    device = Device(name="cpu", kind="cpu", backend="onnxruntime")
    runner = IsolatedRunner()
    try:
        with pytest.raises(cls) as caught:
            runner.call(CallRequest(device=device, fn=study, exclusive=False, timeout_s=60.0), lambda *a: None)
    finally:
        runner.close()
    assert type(caught.value) is cls and "isolated worker" not in str(caught.value)
    if cls is SplitExecutionError:
        assert caught.value.partial == [3.0]
