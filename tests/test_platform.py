"""Committed outputs hold on another CPU: the notebooks and doctests run again with SIMD dispatch narrowed.

NumPy chooses, when it is imported, the widest SIMD code path the CPU has for
sorting, reductions and much else. Anything that depends on that choice -- the
order of tied rows after an unstable sort, the last digit of a sum -- comes out
differently on a user's machine than in the committed notebook outputs. Here
the notebooks (nbval, against their committed outputs) and the doctests of
``branchsim/`` run once more in a subprocess with ``NPY_DISABLE_CPU_FEATURES``
naming every dispatched feature this CPU has, so NumPy runs its baseline code
paths: a different code path on the same machine; numba's kernels are
compiled for the x86-64-v2 baseline too (``NUMBA_CPU_NAME``). (Before the fix in notebook
4, its table of the least certain branches failed here: tied ``p_true`` rows
in another order.)

NumPy's names for the features are its own and change between versions
(NumPy 2.4 groups them as ``X86_V3``, ``X86_V4``, ...; it silently ignores a
name that is not one of its dispatch targets, with only an ``ImportWarning``),
so they are read from NumPy itself, and the test checks in a child process
that the features are really off before trusting the run.

The run takes as long as the notebooks do. ``tests/conftest.py`` starts it
when collection ends, in a subprocess beside the rest of the suite (on the
second core), and moves this test to the end, where it waits for the result.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: What the narrowed run checks: the notebooks under nbval and the package's doctests.
TARGETS = ("notebooks", "branchsim")
TIMEOUT = 1800                  # seconds; the notebooks take a few minutes

_run: dict = {}


def dispatched_features() -> list[str]:
    """NumPy's dispatched SIMD targets that this CPU has (the ones a narrowed run turns off)."""
    try:
        from numpy._core import _multiarray_umath as mu          # NumPy >= 2
    except ImportError:                                          # pragma: no cover - NumPy 1.x
        from numpy.core import _multiarray_umath as mu
    return [f for f in mu.__cpu_dispatch__ if mu.__cpu_features__.get(f)]


def narrowed_env(features=None) -> dict:
    """The environment of the narrowed run: NumPy's dispatch off and, on x86-64, numba compiling for
    the x86-64-v2 baseline instead of this CPU (its ``fastmath`` kernels may vectorise sums differently)."""
    features = dispatched_features() if features is None else features
    env = {**os.environ, "NPY_DISABLE_CPU_FEATURES": " ".join(features)}
    if platform.machine().lower() in ("x86_64", "amd64"):
        env["NUMBA_CPU_NAME"] = "x86-64-v2"
    return env


def start() -> None:
    """Start the narrowed run (once per session); the test below waits for it."""
    if _run:
        return
    features = dispatched_features()
    if not features:
        _run["skip"] = "this CPU has none of NumPy's dispatched SIMD features: nothing to narrow"
        return
    log = tempfile.NamedTemporaryFile(prefix="branchsim-narrowed-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TARGETS]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=narrowed_env(features), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    log.close()
    _run.update(proc=proc, log=Path(log.name), features=features, cmd=cmd, started=time.monotonic())


def stop() -> None:
    """End the run if it is still going (an interrupted session) and remove its log."""
    proc = _run.get("proc")
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    log = _run.get("log")
    if log is not None:
        log.unlink(missing_ok=True)


def test_the_narrowed_features_are_really_off():
    features = dispatched_features()
    if not features:
        pytest.skip("this CPU has none of NumPy's dispatched SIMD features: nothing to narrow")
    code = ("import sys\ntry:\n    from numpy._core import _multiarray_umath as mu\n"
            "except ImportError:\n    from numpy.core import _multiarray_umath as mu\n"
            "print(' '.join(f for f in sys.argv[1:] if mu.__cpu_features__.get(f)))")
    out = subprocess.run([sys.executable, "-W", "error::ImportWarning", "-c", code, *features],
                         env=narrowed_env(features), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]          # a name NumPy does not know warns on import
    assert out.stdout.split() == [], f"still enabled under NPY_DISABLE_CPU_FEATURES: {out.stdout}"


def test_notebooks_and_doctests_under_narrowed_dispatch():
    start()                                     # already started by tests/conftest.py in a full run
    if "skip" in _run:
        pytest.skip(_run["skip"])
    proc, log = _run["proc"], _run["log"]
    try:
        rc = proc.wait(timeout=max(60.0, TIMEOUT - (time.monotonic() - _run["started"])))
    except subprocess.TimeoutExpired:
        stop()
        pytest.fail(f"the narrowed run did not finish in {TIMEOUT} s")
    text = log.read_text(errors="replace")
    env = " ".join(f"{k}='{v}'" for k, v in narrowed_env(_run["features"]).items()
                   if k in ("NPY_DISABLE_CPU_FEATURES", "NUMBA_CPU_NAME"))
    assert rc == 0, (f"outputs differ with NumPy's SIMD dispatch narrowed ({env} "
                     f"{' '.join(_run['cmd'][1:])}); a sort with ties or a digit that depends on the code "
                     f"path? Tail of its output:\n{text[-6000:]}")
