"""The payload/result protocol between the flow host and a job. Never imports Prefect.

A payload is a pickle of ``{"function": ..., "args": ..., "kwargs": ...}``. The function
travels by reference (module + qualname, imported again by the job) so the job runs the
code installed on the worker; only functions that cannot be found that way (closures,
``__main__``) travel by value with cloudpickle. A result is a pickle of either
``{"ok": True, "value": ...}`` or ``{"ok": False, "type", "message", "traceback",
"exception"}`` where ``exception`` is the pickled exception when it pickles.

Both are plain files in the job's sandbox: HTCondor (or the local backend) transfers the
payload in and the result out, so neither side needs to reach the other's storage.
"""

from __future__ import annotations

import importlib
import os
import pickle
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1


class PayloadError(RuntimeError):
    """A payload or result could not be decoded."""


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` at ``path`` atomically (temporary name, then rename): a result
    file either is complete or does not exist."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- the call ---------------------------------------------------------------------------


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def function_reference(fn: Callable[..., Any]) -> dict | None:
    """How the job finds ``fn`` again by import, or None if it cannot.

    A decorated task (``@task def f``) replaces ``f`` in its module by a wrapper whose
    ``__wrapped__`` is the plain function: the job then unwraps it, without knowing
    what the wrapper is.
    """
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<locals>" in qualname:
        return None
    try:
        found = _resolve(module, qualname)
    except (ImportError, AttributeError):
        return None
    if found is fn:
        return {"module": module, "qualname": qualname, "unwrap": False}
    if getattr(found, "__wrapped__", None) is fn:
        return {"module": module, "qualname": qualname, "unwrap": True}
    return None


def dump_call(fn: Callable[..., Any], args: tuple, kwargs: dict) -> bytes:
    """Serialise a call; pickle first, cloudpickle when plain pickle cannot."""
    reference = function_reference(fn)
    body: dict[str, Any] = {"version": PROTOCOL_VERSION, "args": args, "kwargs": kwargs}
    if reference is not None:
        body["function"] = reference
        try:
            return pickle.dumps(body, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError):
            pass
    import cloudpickle

    body["function"] = reference or {"by_value": cloudpickle.dumps(fn)}
    return cloudpickle.dumps(body, protocol=5)


def load_call(data: bytes) -> tuple[Callable[..., Any], tuple, dict]:
    body = pickle.loads(data)
    if body.get("version") != PROTOCOL_VERSION:
        raise PayloadError(f"payload protocol {body.get('version')} != {PROTOCOL_VERSION}")
    ref = body["function"]
    if "by_value" in ref:
        fn = pickle.loads(ref["by_value"])
    else:
        fn = _resolve(ref["module"], ref["qualname"])
        if ref["unwrap"]:
            fn = fn.__wrapped__
    return fn, body["args"], body["kwargs"]


def dump_value(value: Any) -> bytes:
    body = {"version": PROTOCOL_VERSION, "ok": True, "value": value}
    try:
        return pickle.dumps(body, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):
        import cloudpickle

        return cloudpickle.dumps(body, protocol=5)


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def dump_error(exc: BaseException) -> bytes:
    """An exception as data: its type, message and formatted traceback always survive."""
    try:
        pickled: bytes | None = pickle.dumps(exc, protocol=5)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    body = {
        "version": PROTOCOL_VERSION,
        "ok": False,
        "type": _type_name(exc),
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "exception": pickled,
    }
    return pickle.dumps(body, protocol=5)


def load_outcome(data: bytes) -> dict:
    """Decode a result written by :func:`dump_value` or :func:`dump_error`."""
    body = pickle.loads(data)
    if body.get("version") != PROTOCOL_VERSION:
        raise PayloadError(f"result protocol {body.get('version')} != {PROTOCOL_VERSION}")
    return body
