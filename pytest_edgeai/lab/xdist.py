"""pytest-xdist roles, duck-typed on pytest's config (nothing here imports pytest or xdist).

The controller (``-n N`` or ``-d --tx ...``) plans the run and renders the report; each worker measures
and writes records; remote workers reach the lab's benches over SSH through execnet.
"""

from __future__ import annotations

import socket
from typing import Any

from .runshare import RunPlan, from_workerinput, plan_run

# Added to an ssh= gateway unless the spec sets them: never wait for a password prompt nobody
# answers, never wait minutes for a host that is down.
SSH_DEFAULTS = {"BatchMode": "yes", "ConnectTimeout": "15"}


def is_worker(config: Any) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: Any) -> bool:
    option = config.option
    return (not is_worker(config) and getattr(option, "dist", "no") != "no"
            and not getattr(option, "collectonly", False))


def roles(config: Any, report_dir: Any) -> tuple[RunPlan | None, dict[str, str] | None]:
    """(the shared run, this worker's identity): (None, None) outside xdist."""
    if is_worker(config):
        return (from_workerinput(config.workerinput),
                {"id": str(config.workerinput.get("workerid", "")), "host": socket.gethostname()})
    if is_controller(config):
        return plan_run(report_dir), None
    return None, None


def harden_ssh(spec: Any) -> None:
    """Make an ``ssh=`` gateway fail fast with ssh's own message instead of hanging."""
    ssh = getattr(spec, "ssh", None)
    if not ssh:
        return
    missing = [f"-o {key}={value}" for key, value in SSH_DEFAULTS.items() if key.lower() not in ssh.lower()]
    if missing:
        spec.ssh = " ".join([*missing, ssh])


def bound_restarts(config: Any) -> None:
    """With ``--tx`` alone xdist restarts a crashing worker forever (its own bound applies to ``-n``):
    a remote worker that dies at start-up (a bad devices.toml there) would loop without end."""
    option = config.option
    specs = getattr(option, "tx", None) or []
    if getattr(option, "maxworkerrestart", None) is None and not getattr(option, "numprocesses", None) and specs:
        option.maxworkerrestart = str(4 * len(specs))


def unreachable_message(exc: BaseException) -> str | None:
    """One line for a remote bench that cannot be reached; None for any other error."""
    try:
        from execnet import HostNotFound
    except ImportError:
        return None
    if not isinstance(exc, HostNotFound):
        return None
    return (f"pytest-edgeai: the remote bench did not answer (ssh {exc}); ssh's own message is above. Check "
            f"the host and port, the user and key (try: ssh -i KEY user@host), and that python= names a Python "
            f"with pytest-edgeai installed on that host")
