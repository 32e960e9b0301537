"""devices.toml validation at lab scale: how long loading a file of N devices takes, and how often the
installed packages' entry points are read (issue 16 item 13: once per device cost 20-25 s for 2,000).

Run: python benchmarks/bench_config_validation.py [--devices 2000] [--rounds 3]
Prints each round's load time, the median, the time per device, and the entry_points() calls of one load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from importlib import metadata
from pathlib import Path

from pytest_edgeai import config, registry


def inventory(n: int) -> str:
    """N devices on two backends, each with options and a meter: every per-device check runs."""
    out = []
    for i in range(n):
        backend, options = (("onnxruntime", "intra_op_num_threads = 1") if i % 2 else
                            ("openvino", 'performance_hint = "THROUGHPUT"'))
        out.append(f'[devices.d{i}]\nkind = "cpu"\nbackend = "{backend}"\nmemory_mb = 4096\n'
                   f'[devices.d{i}.options]\n{options}\n[devices.d{i}.meter]\nsource = "rapl"\n'
                   f"[devices.d{i}.claims.throughput]\nmin_inferences_per_s = {{ mobilenet_v2 = 20.0 }}\n")
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = Path(tempfile.mkdtemp()) / "devices.toml"
    path.write_text(inventory(args.devices))
    calls = 0
    real = metadata.entry_points

    def counting(**kw):
        nonlocal calls
        calls += 1
        return real(**kw)

    config.load(path)  # first load imports the backend and meter modules
    times = []
    for r in range(args.rounds):
        calls = 0
        registry.metadata.entry_points = counting  # type: ignore[assignment]
        start = time.perf_counter()
        loaded = config.load(path)
        times.append(time.perf_counter() - start)
        registry.metadata.entry_points = real  # type: ignore[assignment]
        print(f"round {r + 1}: {len(loaded.devices)} devices loaded in {times[-1]:.3f} s, "
              f"entry_points() called {calls} time(s)")
    median = statistics.median(times)
    print(f"median {median:.3f} s for {args.devices} devices ({median / args.devices * 1e3:.3f} ms per device)")


if __name__ == "__main__":
    main()
