"""devices.toml under attack (issue 16 items 5, 6, 13; issue 17 item 4): every problem is one line at
load, naming the key path, never a traceback and never a device that merely reads as 'not attached'."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

import pytest

from pytest_edgeai import config, registry
from pytest_edgeai.errors import ConfigError

CPU = '[devices.cpu]\nkind = "cpu"\nbackend = "onnxruntime"\n'


def problems(tmp_path: Path, text: str | bytes) -> list[str]:
    path = tmp_path / "devices.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(ConfigError) as info:
        config.load(path)
    for line in info.value.problems:
        assert "\n" not in line and line.startswith(str(path))
    return info.value.problems


BIG = "9" * 400


@pytest.mark.parametrize("text, key", [
    (CPU + f"memory_mb = {BIG}\n", "devices.cpu.memory_mb"),
    (CPU + f"price_usd = {BIG}\n", "devices.cpu.price_usd"),
    (CPU + f"[devices.cpu.claims.throughput]\nmin_inferences_per_s = {BIG}\n",
     "devices.cpu.claims.throughput.min_inferences_per_s"),
    (CPU + f'[links.l]\nfrom = "device"\nto = "cloud"\nbandwidth_mbps = {BIG}\nrtt_ms = 1\n', "links.l.bandwidth_mbps"),
    (CPU + f"[tolerances.throughput]\nthroughput_ips = {BIG}\n", "tolerances.throughput.throughput_ips"),
    (CPU + f'[devices.cpu.meter]\nsource = "rapl"\nrate_hz = {BIG}\n', "devices.cpu.meter.rate_hz"),
    (CPU + f"[devices.cpu.options]\nintra_op_num_threads = {BIG}\n", "devices.cpu.options.intra_op_num_threads"),
])
def test_a_400_digit_integer_is_one_line_not_an_overflow(tmp_path, text, key):
    found = problems(tmp_path, text)
    assert len(found) == 1 and f"{key}: " in found[0] and BIG not in found[0]


def test_an_integer_python_will_not_even_print_is_one_line(tmp_path):
    found = problems(tmp_path, CPU + f"memory_mb = {'9' * 5000}\n")
    assert len(found) == 1 and "not valid TOML" in found[0]


@pytest.mark.parametrize("nested", [
    "x = " + "[" * 500 + "]" * 500 + "\n",
    "x = " + "{a = " * 500 + "1" + "}" * 500 + "\n",
    "x = " + "[" * 40 + "]" * 40 + "\n",  # parses, but deeper than any devices.toml
])
def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path, nested):
    found = problems(tmp_path, CPU + "[devices.cpu.options]\n" + nested)
    assert len(found) == 1 and "nested" in found[0]


def test_a_utf8_byte_order_mark_is_not_content(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_bytes(b"\xef\xbb\xbf" + CPU.encode())
    assert list(config.load(path).devices) == ["cpu"]


@pytest.mark.parametrize("table, key", [
    ("path = 5", "models.m.path"), ('zoo = ["mobilenet_v2"]', "models.m.zoo"), ('path = ""', "models.m.path"),
])
def test_model_entries_of_the_wrong_type_are_refused_at_load(tmp_path, table, key):
    found = problems(tmp_path, CPU + f"[models.m]\n{table}\n")
    assert len(found) == 1 and f"{key}: must be a non-empty string" in found[0]


@pytest.mark.parametrize("option, expect", [
    ('providers = "CPUExecutionProvider"', "options.providers: 'CPUExecutionProvider' is not an array of strings"),
    ('intra_op_num_threads = "many"', "options.intra_op_num_threads: 'many' is not an integer"),
    ("intra_op_num_threads = -1", "options.intra_op_num_threads: -1 must be >= 0"),
    ('graph_optimization_level = "max"', "options.graph_optimization_level: 'max' is not allowed"),
    ("enable_cpu_mem_arena = 1", "options.enable_cpu_mem_arena: 1 must be true or false"),
    ("intra_op_num_thread = 2", ("options.intra_op_num_thread: unknown onnxruntime option "
                                 "(did you mean 'intra_op_num_threads'?)")),
])
def test_onnxruntime_options_are_checked_at_load(tmp_path, option, expect):
    found = problems(tmp_path, CPU + f"[devices.cpu.options]\n{option}\n")
    assert len(found) == 1 and f"devices.cpu.{expect}" in found[0]


@pytest.mark.parametrize("backend, option, expect", [
    ("openvino", 'performance_hnt = "THROUGHPUT"', "unknown openvino option (did you mean 'performance_hint'?)"),
    ("openvino", 'performance_hint = "FAST"', "'FAST' is not allowed"),
    ("openvino", "num_streams = 0", "0 must be >= 1"),
    ("openvino", 'num_streams = "many"', "'many' is not allowed; allowed: a number or AUTO"),
    ("litert", 'num_threads = "4"', "'4' is not an integer"),
    ("litert", 'co_compile = "a.tflite"', "is not an array of strings"),
    ("tensorrt", 'fp16 = "yes"', "'yes' must be true or false"),
    ("tensorrt", "batch_max = 0", "0 must be >= 1"),
    ("torch", "num_threads = 1.5", "1.5 is not an integer"),
])
def test_every_backends_options_are_checked_at_load(tmp_path, backend, option, expect):
    text = f'[devices.d]\nkind = "cpu"\nbackend = "{backend}"\n[devices.d.options]\n{option}\n'
    found = problems(tmp_path, text)  # no runtime needed: the backend module declares its keys
    assert len(found) == 1 and expect in found[0] and "devices.d.options." in found[0]


def test_good_backend_options_load(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text('[devices.ov]\nkind = "cpu"\nbackend = "openvino"\n[devices.ov.options]\n'
                    'performance_hint = "throughput"\nnum_streams = "AUTO"\nnum_requests = 4\n'
                    '[devices.ort]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.ort.options]\n'
                    'providers = ["CPUExecutionProvider"]\nintra_op_num_threads = 0\n')
    cfg = config.load(path)
    assert cfg.devices["ov"].options["performance_hint"] == "throughput"  # as configured, for the record


def test_the_shipped_devices_toml_passes_the_option_checks():
    cfg = config.load(Path(__file__).resolve().parents[1] / "devices.toml")  # raises on any problem
    assert {"cpu", "openvino_cpu", "edgetpu", "litert_cpu"} <= set(cfg.devices)


@pytest.mark.parametrize("name", ["a/b", "..", ".hidden", "nul\x00byte", "tab\there", "x" * 240, "back\\slash"])
def test_device_names_that_cannot_be_part_of_a_path_are_refused_naming_the_rule(tmp_path, name):
    found = problems(tmp_path, f'[devices.{json.dumps(name)}]\nkind = "cpu"\nbackend = "onnxruntime"\n')
    assert len(found) == 1 and "is not a usable name" in found[0] and "without '/'" in found[0]


def test_model_names_follow_the_same_rule(tmp_path):
    found = problems(tmp_path, CPU + '[models."../../etc"]\npath = "m.onnx"\n')
    assert len(found) == 1 and "models.../../etc: is not a usable name" in found[0]


def test_names_with_dollars_spaces_and_unicode_are_fine(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text('[devices."price_$5 and ü"]\nkind = "cpu"\nbackend = "onnxruntime"\n', encoding="utf-8")
    assert list(config.load(path).devices) == ["price_$5 and ü"]


def test_entry_points_are_read_once_for_2000_devices(tmp_path, monkeypatch):
    calls = []
    real = metadata.entry_points

    def counting(**kw):
        calls.append(kw)
        return real(**kw)

    monkeypatch.setattr(registry.metadata, "entry_points", counting)
    path = tmp_path / "devices.toml"
    path.write_text("".join(f'[devices.d{i}]\nkind = "cpu"\nbackend = "onnxruntime"\n[devices.d{i}.options]\n'
                            f'intra_op_num_threads = 1\n[devices.d{i}.meter]\nsource = "rapl"\n'
                            for i in range(2000)))
    assert len(config.load(path).devices) == 2000
    assert len(calls) <= 2  # backends' group once (meters only when a source is not built in)
