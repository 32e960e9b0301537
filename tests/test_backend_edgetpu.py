"""EdgeTPU with fakes at the vendor boundary: sysfs, load_delegate, edgetpu_compiler, dpkg, pycoral."""

from __future__ import annotations

import stat
import sys
import types

import pytest

from pytest_edgeai.backends import edgetpu, litert
from pytest_edgeai.devices import Device
from pytest_edgeai.errors import BackendError
from pytest_edgeai.models.model import model_from_file


def fake_sysfs(root, usb=(("1-1", "18d1", "9302"), ("1-2", "046d", "c52b"), ("2-1", "1a6e", "089a")), apex=1):
    for name, vendor, product in usb:
        d = root / "bus" / "usb" / "devices" / name
        d.mkdir(parents=True)
        (d / "idVendor").write_text(vendor + "\n")
        (d / "idProduct").write_text(product + "\n")
    for i in range(apex):
        (root / "class" / "apex" / f"apex_{i}").mkdir(parents=True)
    return root


def test_list_tpus_finds_usb_by_vendor_id_and_pcie_by_apex(tmp_path):
    tpus = edgetpu.list_tpus(fake_sysfs(tmp_path))
    assert [(t.name, t.type) for t in tpus] == [("usb:0", "usb"), ("usb:1", "usb"), ("pci:0", "pci")]
    assert tpus[1].path.endswith("2-1")  # the not-yet-initialised 1a6e:089a one counts too
    assert edgetpu.list_tpus(tmp_path / "nothing") == []


@pytest.mark.parametrize("platform, name", [("linux", "libedgetpu.so.1"), ("darwin", "libedgetpu.1.dylib"),
                                            ("win32", "edgetpu.dll")])
def test_library_name_per_platform(platform, name):
    assert edgetpu.library_name(platform) == name


def real_like_loader(calls):
    """Like tflite's load_delegate: a ValueError when libedgetpu cannot open the device."""

    def load_delegate(library, options):
        calls.append((library, options))
        raise ValueError(f"Failed to load delegate from {library}\n")

    return load_delegate


def test_a_tpu_held_by_another_process_fails_clearly(tmp_path):
    calls = []
    tpus = edgetpu.list_tpus(fake_sysfs(tmp_path))
    with pytest.raises(BackendError) as err:
        edgetpu.load_delegate(real_like_loader(calls), "usb:0", tpus, "libedgetpu.so.1")
    assert str(err.value).startswith("EdgeTPU usb:0 is in use by another process")
    assert calls == [("libedgetpu.so.1", {"device": "usb:0"})]
    with pytest.raises(BackendError, match=r"EdgeTPU pci:3 is not attached \(attached: usb:0, usb:1, pci:0\)"):
        edgetpu.load_delegate(real_like_loader(calls), "pci:3", tpus, "libedgetpu.so.1")


def test_library_variant_from_the_dpkg_database(tmp_path):
    info = tmp_path / "dpkg"
    info.mkdir()
    (info / "libedgetpu1-max:amd64.list").write_text("/usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0\n")
    assert edgetpu.library_variant("/usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0", info).startswith("max (direct")
    (info / "libedgetpu1-max:amd64.list").unlink()
    (info / "libedgetpu1-std:amd64.list").write_text("/usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0\n")
    assert edgetpu.library_variant("/usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0", info).startswith("std (throttled")
    assert edgetpu.library_variant("/opt/edgetpu/libedgetpu.so.1", info) == "unknown"
    assert edgetpu.library_variant(None, info) == "unknown"


def test_loaded_library_is_read_from_the_process_maps(tmp_path):
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f10 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n"
                    "7f20-7f30 r-xp 00000000 08:01 2 /usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0\n")
    assert edgetpu.loaded_library(maps) == "/usr/lib/x86_64-linux-gnu/libedgetpu.so.1.0"
    assert edgetpu.loaded_library(tmp_path / "absent") is None


@pytest.fixture
def fake_compiler(tmp_path):
    """An edgetpu_compiler that writes <stem>_edgetpu.tflite for each input and counts its runs."""
    exe = tmp_path / "bin" / "edgetpu_compiler"
    exe.parent.mkdir()
    exe.write_text(f"""#!/bin/sh
if [ "$1" = --version ]; then echo "Edge TPU Compiler version 16.0.384591198"; exit 0; fi
echo run >> {tmp_path}/runs
[ "$1" = -s ] && [ "$2" = -o ] || exit 2
out=$3; shift 3
for m in "$@"; do b=$(basename "$m" .tflite); cp "$m" "$out/${{b}}_edgetpu.tflite"; done
""")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_compile_co_compiles_and_caches(tmp_path, fake_compiler):
    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    a.write_bytes(b"A")
    b.write_bytes(b"B")
    out = edgetpu.compile_for_edgetpu([a, b], tmp_path / "cache", compiler=str(fake_compiler))
    assert [c.path.name for c in out] == ["a_edgetpu.tflite", "b_edgetpu.tflite"]
    assert out[0].path.read_bytes() == b"A" and out[0].path.parent == out[1].path.parent
    again = edgetpu.compile_for_edgetpu([a, b], tmp_path / "cache", compiler=str(fake_compiler))
    assert again == out and (tmp_path / "runs").read_text().count("run") == 1


def test_compile_without_the_compiler_or_with_a_failing_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "a.tflite").write_bytes(b"A")
    with pytest.raises(BackendError, match="edgetpu_compiler is not on PATH"):
        edgetpu.compile_for_edgetpu([tmp_path / "a.tflite"], tmp_path)
    bad = tmp_path / "edgetpu_compiler"
    bad.write_text("#!/bin/sh\n[ \"$1\" = --version ] && exit 0\necho 'Model not quantized' >&2\nexit 1\n")
    bad.chmod(0o755)
    with pytest.raises(BackendError, match="failed \\(exit 1\\): Model not quantized"):
        edgetpu.compile_for_edgetpu([tmp_path / "a.tflite"], tmp_path / "c", compiler=str(bad))


def test_coral_pycoral_is_recognised_by_its_contents(monkeypatch):
    unrelated = types.ModuleType("pycoral.utils.edgetpu")
    pkg, utils = types.ModuleType("pycoral"), types.ModuleType("pycoral.utils")
    utils.edgetpu = unrelated
    pkg.utils = utils
    monkeypatch.setitem(sys.modules, "pycoral", pkg)
    monkeypatch.setitem(sys.modules, "pycoral.utils", utils)
    monkeypatch.setitem(sys.modules, "pycoral.utils.edgetpu", unrelated)
    assert edgetpu.coral_edgetpu_module() is None
    for name in ("make_interpreter", "list_edge_tpus", "load_edgetpu_delegate"):
        setattr(unrelated, name, lambda *a, **k: None)
    assert edgetpu.coral_edgetpu_module() is unrelated


def dpkg_status(path, package="libedgetpu1-max", version="16.0"):
    """dpkg's status database (dpkg(1), /var/lib/dpkg/status: one stanza per package)."""
    path.write_text(f"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n"
                    f"Package: {package}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n")
    return path


def paired_runtime(monkeypatch, tmp_path, version="16.0", interpreter=("tflite_runtime.interpreter", "2.5.0.post1")):
    monkeypatch.setattr(edgetpu, "DPKG_STATUS", dpkg_status(tmp_path / "status", version=version))
    monkeypatch.setattr(edgetpu, "find_runtime", lambda: "libedgetpu.so.1")
    monkeypatch.setattr(litert, "_edgetpu_interpreter", lambda: (FakeInterpreter, None, *interpreter))


def test_the_installed_runtime_package_is_read_from_dpkg(tmp_path):
    assert edgetpu.runtime_package(dpkg_status(tmp_path / "s")) == ("libedgetpu1-max", "16.0")
    assert edgetpu.runtime_package(tmp_path / "absent") is None


@pytest.mark.parametrize("package, interpreter, ok", [
    ("16.0", ("tflite_runtime.interpreter", "2.5.0.post1"), True),
    ("16.0", ("tflite_runtime.interpreter", "2.17.1"), False),
    ("16.0tf2.17.1-1.bookworm", ("tflite_runtime.interpreter", "2.17.1"), True),
    ("16.0tf2.17.1-1.bookworm", ("tflite_runtime.interpreter", "2.5.0.post1"), False),
])
def test_libedgetpu_pairs_only_with_the_tflite_runtime_of_its_tensorflow(package, interpreter, ok):
    problem = edgetpu.pairing_problem(*interpreter, ("libedgetpu1-std", package))
    assert (problem is None) == ok
    if not ok:
        assert "EdgeTpuDelegateForCustomOp failed to prepare" in problem and "pip install 'tflite-runtime==" in problem


def test_the_probe_says_what_to_install_for_each_missing_piece(tmp_path, monkeypatch):
    sysfs = fake_sysfs(tmp_path / "sys")
    device = edgetpu_device(sysfs)
    monkeypatch.setattr(litert, "interpreter_module", lambda runtimes=(): (_ for _ in ()).throw(BackendError(
        "the Edge TPU delegate runs inside tflite_runtime (the ABI libedgetpu is built for), which is not importable")))
    assert "runs inside tflite_runtime" in litert.LiteRTBackend().probe(device).reason
    paired_runtime(monkeypatch, tmp_path)
    monkeypatch.setattr(edgetpu, "DPKG_STATUS", tmp_path / "no-status")
    monkeypatch.setattr(edgetpu, "find_runtime", lambda: None)
    a = litert.LiteRTBackend().probe(device)
    assert not a.attached and a.reason == ("libedgetpu.so.1 not found: install the Edge TPU runtime: sudo apt-get "
                                           "install libedgetpu1-std (Coral's apt repository, "
                                           "https://coral.ai/software/#edgetpu-runtime)")
    paired_runtime(monkeypatch, tmp_path, interpreter=("ai_edge_litert.interpreter", "2.3.0"))
    a = litert.LiteRTBackend().probe(device)
    assert not a.attached and a.reason.startswith("libedgetpu1-max 16.0 is built against TensorFlow 2.5's TFLite ABI")
    paired_runtime(monkeypatch, tmp_path)
    assert litert.LiteRTBackend().probe(device).attached


class FakeInterpreter:
    """Stands in for LiteRT's Interpreter so the delegate path runs without a TPU."""

    def __init__(self, model_path, num_threads=None, experimental_delegates=()):
        self.delegates = list(experimental_delegates)

    def allocate_tensors(self):
        pass

    def get_input_details(self):
        import numpy as np

        return [{"name": "in", "index": 0, "shape": np.array([1, 8]), "dtype": np.int8, "quantization": (0.1, 0)}]

    get_output_details = get_input_details


def edgetpu_device(sysfs, **options) -> Device:
    return Device(name="coral", kind="edgetpu", backend="litert",
                  options={"delegate": "edgetpu", "device": "usb:0", "sysfs_root": str(sysfs), **options})


def test_litert_probe_and_load_through_the_delegate(tmp_path, monkeypatch):
    sysfs = fake_sysfs(tmp_path / "sys")
    paired_runtime(monkeypatch, tmp_path)
    model_path = tmp_path / "m_edgetpu.tflite"
    model_path.write_bytes(b"TFL3")
    backend = litert.LiteRTBackend()
    assert backend.probe(edgetpu_device(sysfs)).attached
    absent = backend.probe(edgetpu_device(sysfs, device="pci:2"))
    assert not absent.attached and "EdgeTPU pci:2 is not attached" in absent.reason

    delegate = object()
    calls = []
    monkeypatch.setattr(litert, "_edgetpu_interpreter",
                        lambda: (FakeInterpreter, lambda lib, opts: calls.append(opts) or delegate,
                                 "tflite_runtime.interpreter", "2.5.0.post1"))
    monkeypatch.setattr(edgetpu, "loaded_library", lambda: "/usr/lib/libedgetpu1-max/libedgetpu.so.1")
    session = backend.load(model_from_file(model_path), edgetpu_device(sysfs))
    assert calls == [{"device": "usb:0"}] and session._it.delegates == [delegate]
    s = session.settings()
    assert s["delegate"] == "edgetpu" and s["edgetpu_device"] == "usb:0" and s["edgetpu_compiled"] == "as given"
    assert s["library_variant"].startswith("max")

    monkeypatch.setattr(litert, "_edgetpu_interpreter",
                        lambda: (FakeInterpreter, real_like_loader([]), "tflite_runtime.interpreter", "2.5.0.post1"))
    with pytest.raises(BackendError, match="EdgeTPU usb:0 is in use by another process"):
        backend.load(model_from_file(model_path), edgetpu_device(sysfs))


def test_unknown_litert_option_is_named(tmp_path):
    a = litert.LiteRTBackend().probe(Device(name="l", kind="cpu", backend="litert", options={"num_thread": 2}))
    assert (not a.attached
            and "devices.l.options.num_thread: unknown litert option (did you mean 'num_threads'" in a.reason)

