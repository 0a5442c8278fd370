"""The explorer in a real browser: JupyterLab driven through Debian's Chromium with Playwright (issue 14).

A JupyterLab server runs on a free local port with a token, its config, data and runtime folders
under the test's temporary folder (the user's settings are not read) and a kernel that is this
interpreter. Chromium (``/usr/bin/chromium`` from apt, never a Playwright browser download) opens

- a notebook written here that builds a small population with a fixed seed and calls
  ``bs.explore(pop)``. After Run All the sliders show and no widget fails to display. Driven as a
  user would: a value typed into a slider's readout, then five arrow presses on another slider's
  handle, change the counts shown to the ones :func:`branchsim.evaluate` gives here under the
  policy with that value (and the chart is redrawn); the reset button brings the baseline's back;
  "What does it take?" answers for a branch id typed in; cut points out of order show the
  explorer's message inside its column while the counts stay; the collapsed balance sliders open;
  no slider readout is cut off by its box; in a narrow window the counts go below the sliders;
- a committed notebook of ``notebooks/`` (not run): its committed figures load.

The browser's console must stay free of errors. The test skips only when Chromium is missing or
cannot start (``apt-get install chromium``); everything else failing is a failure. About 20 s.
"""
from __future__ import annotations

import html
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest

import branchsim as bs

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SEED, N_BRANCHES = 7, 300
#: Chromium with nothing that reaches the network: the test machine's network may be closed, and
#: without the background-networking flags Chromium floods the log with refused connections.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: The kernel of the notebook written here: a kernel spec of the test's Jupyter data folder running this
#: interpreter. (A committed notebook's "python3" is the environment's ipykernel spec, whose "python"
#: jupyter_client runs as the server's interpreter, this one too.)
KERNEL, KERNEL_NAME = "branchsim-browser-test", "Python 3 (this interpreter)"
INSTALL = "install it with `apt-get install chromium` (Debian; .ci/run does this when it can)"
START_S = 120          # JupyterLab answering its API (about 3 s on an idle machine)
UI_MS = 60_000         # a page, the kernel, a cell's output
STEP_MS = 20_000       # one widget update after a slider move
#: Console errors JupyterLab itself logs that have nothing to do with the widgets (substring of the
#: message text). Empty: none seen with JupyterLab 4 and these settings; add one only with a reason.
BENIGN_CONSOLE_ERRORS: tuple[str, ...] = ()


def chromium_path() -> str | None:
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


# -- the browser --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright; a skip when it is missing or cannot start."""
    path = chromium_path()
    if path is None:
        pytest.skip(f"the browser test needs Chromium (no /usr/bin/chromium, no chromium on PATH): {INSTALL}")
    from playwright.sync_api import Error, sync_playwright
    pw = sync_playwright().start()
    try:
        try:
            b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True, timeout=60_000)
        except Error as exc:
            first = (str(exc).strip().splitlines() or ["?"])[0]
            pytest.skip(f"Chromium at {path} cannot start ({first}); the browser test needs a working "
                        f"Chromium: {INSTALL}")
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


class Console:
    """The errors a page logs: console messages of type error and uncaught exceptions."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", self._message)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _message(self, msg):
        if msg.type == "error":
            loc = msg.location or {}
            self.errors.append(f"console error: {msg.text} ({loc.get('url', '')}:{loc.get('lineNumber', '')})")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(b in e for b in BENIGN_CONSOLE_ERRORS)]


# -- the JupyterLab server ----------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    """The direct children of a process (the kernels a server started)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _settings(config: Path, data: Path) -> None:
    """A throwaway Jupyter setup: this interpreter as the kernel, nothing fetched from the network."""
    kernel = data / "kernels" / KERNEL
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": KERNEL_NAME, "language": "python"}))
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_lab_config.json").write_text(json.dumps({"LabApp": {
        "news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly"}}))
    note = config / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    note.mkdir(parents=True)
    (note / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false",
                                                                        "checkForUpdates": False}))


class Lab:
    def __init__(self, root: Path, port: int | None, token: str, proc: subprocess.Popen, log: Path):
        self.root, self.port, self.token, self.proc, self.log = root, port, token, proc, log

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}?token={self.token}"

    def api(self, path: str, method: str = "GET", timeout: float = 5.0):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/api/{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


@pytest.fixture(scope="module")
def lab(browser, tmp_path_factory):
    """JupyterLab on a free port, rooted in a temporary folder; shut down (process groups killed) after."""
    base = tmp_path_factory.mktemp("jupyterlab")
    root, config, data, runtime = (base / x for x in ("root", "config", "data", "runtime"))
    for d in (root, runtime):
        d.mkdir()
    _settings(config, data)
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH")}
    env.update(JUPYTER_CONFIG_DIR=str(config), JUPYTER_DATA_DIR=str(data), JUPYTER_RUNTIME_DIR=str(runtime),
               IPYTHONDIR=str(base / "ipython"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    token = secrets.token_hex(16)
    log = base / "jupyterlab.log"
    # A free port; should another process take it first, the server tries others and its runtime
    # file (jpserver-PID.json, in our runtime folder) says which one it got.
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", f"--port={free_port()}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--ServerApp.terminals_enabled=False"] + (["--allow-root"] if os.geteuid() == 0 else [])  # CI containers
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Lab(root, None, token, proc, log)
    try:
        deadline = time.monotonic() + START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{server.log_tail()}")
            try:
                if server.port is None:
                    info = json.loads(next(runtime.glob("jpserver-*.json")).read_text())
                    server.port = int(info["port"])
                if server.api("status", timeout=2)[0] == 200:
                    break
            except (StopIteration, ValueError, KeyError, OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {START_S} s:\n{server.log_tail()}")
            time.sleep(0.25)
        yield server
    finally:
        _stop(server)


def _stop(server: Lab) -> None:
    """Ask the server to shut down (it stops its kernels), then kill what is left: its process group
    and those of its kernels (each kernel runs in a session of its own)."""
    proc = server.proc
    kernels = _children(proc.pid)
    try:
        if server.port is not None:
            server.api("shutdown", method="POST", timeout=5)
            proc.wait(timeout=15)
    except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
        pass
    for group in [proc.pid, *kernels]:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


# -- driving JupyterLab -------------------------------------------------------------------------------
def open_notebook(browser, lab: Lab, name: str, kernel: str = KERNEL_NAME):
    """A new page showing the notebook ``name`` with its kernel idle, and the page's console record."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(UI_MS)
    console = Console(page)
    page.goto(lab.url(f"lab/tree/{name}"), timeout=UI_MS)
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(state="visible")
    # The status bar names the kernel once it is connected and idle (before: "No Kernel | Initializing").
    page.get_by_text(f"{kernel} | Idle").first.wait_for(state="visible")
    return page, console


def run_all(page) -> None:
    """Run > Run All Cells from the menu bar, as a user would."""
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def shown_counts(table) -> dict[str, int]:
    """The counts column of the explorer's table: level or designation id -> count."""
    rows = table.evaluate("t => [...t.tBodies[0].rows].map(r => [r.cells[0].textContent, r.cells[1].textContent])")
    return {k.strip(): int(v) for k, v in rows}


def wait_until(page, condition, timeout_ms: int = STEP_MS) -> bool:
    """Whether ``condition()`` holds within the timeout (polled every 100 ms)."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not condition():
        if time.monotonic() > deadline:
            return False
        page.wait_for_timeout(100)
    return True


def wait_for_counts(page, table, want: dict[str, int]) -> dict[str, int]:
    """The counts shown once they are ``want`` (the updates after a move may pass through others),
    or after a timeout when they do not get there."""
    wait_until(page, lambda: shown_counts(table) == want)
    return shown_counts(table)


def inside(element, box) -> None:
    """``element`` is drawn within ``box`` (a column of the explorer): not clipped, not spilling out."""
    e, b = element.bounding_box(), box.bounding_box()
    assert e and b, "not displayed"
    assert b["x"] - 1 <= e["x"] and e["x"] + e["width"] <= b["x"] + b["width"] + 1, (e, b)


def column(element):
    """The innermost box of widgets holding ``element``."""
    return element.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' widget-vbox ')][1]")


def a_move(pop, policy: bs.Policy, candidates) -> tuple[str, float, dict[str, int]]:
    """The first ``(path, value)`` of ``candidates`` under which :func:`branchsim.evaluate` counts
    differently from under ``policy``; with those counts."""
    base = level_counts(pop, policy)
    for key, value in candidates:
        counts = level_counts(pop, policy.update({key: value}))
        if counts != base:
            return key, value, counts
    raise AssertionError(f"no slider move among {candidates} changes the counts of this population")


def level_counts(pop, policy) -> dict[str, int]:
    return {k: int(v) for k, v in bs.evaluate(pop, policy).level_counts()["count"].items()}


# -- the tests ----------------------------------------------------------------------------------------
def test_the_explorer_in_jupyterlab(browser, lab):
    from branchsim.explorer import Explorer
    pop = bs.generate(seed=SEED, n_branches=N_BRANCHES, members=False)
    policy = bs.Policy.load()
    here = Explorer(pop, policy)           # the sliders the notebook's explorer must show
    descriptions = [s.description for s in here.sliders.values()]
    baseline = level_counts(pop, policy)
    # A value typed into a readout: the lowest cut point lowered (the cuts stay in order), else a share.
    # A move by the arrow keys on a handle: the survey share, else a designation line, 5 steps.
    typed, arrows = [], []
    for k, s in here.sliders.items():
        if k.startswith("branch.rating.cuts."):
            typed = [(k, s.value - d) for d in (5.0, 10.0)]                  # the last one is the lowest
        if k == "branch.satisfaction_share" or ".designations." in k:
            arrows += [(k, round(s.value + n * s.step, 6)) for n in (5, -5) if s.min <= s.value + n * s.step <= s.max]
    key, value, want = a_move(pop, policy, typed + arrows)
    arrow_key, arrow_value, arrow_want = a_move(pop, policy, [(k, v) for k, v in arrows if k != key])

    # "What does it take?" for the first branch, at the baseline: the lines above the answer's table.
    branch_id = str(pop.branches["branch_id"].iloc[0])
    here.show_next_level(branch_id)
    answer = [" ".join(re.sub(r"<[^>]+>", "", html.unescape(line)).split())
              for line in here.next_box.value.split("<table")[0].split("<br>")]
    assert answer[0].startswith(f"Branch {branch_id}: score"), answer
    # A setting that breaks a rule: the second cut point above the first (when there are two).
    cuts = [k for k in here.sliders if k.startswith("branch.rating.cuts.")]
    broken = (cuts[1], here.sliders[cuts[0]].value + 5.0) if len(cuts) > 1 else None
    if broken:
        here.sliders[broken[0]].value = broken[1]
        assert here.message                                   # the message the browser must show

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"import branchsim as bs\n"
                                          f"pop = bs.generate(seed={SEED}, n_branches={N_BRANCHES}, members=False)\n"
                                          f"bs.explore(pop)")]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL_NAME, "language": "python"}
    nbformat.write(nb, lab.root / "explore.ipynb")

    page, console = open_notebook(browser, lab, "explore.ipynb")
    try:
        run_all(page)
        widget = page.locator(".jp-OutputArea-output .widget-vbox", has_text="Policy explorer").first
        widget.wait_for(state="visible")
        sliders = widget.locator(".widget-hslider")
        page.wait_for_function(f"() => document.querySelectorAll('.widget-hslider').length >= {len(descriptions)}",
                               timeout=UI_MS)
        assert sliders.locator(".widget-label").evaluate_all("ls => ls.map(l => l.textContent)") == descriptions
        assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()

        table = widget.locator("table", has=page.locator("th", has_text="change")).first
        assert shown_counts(table) == baseline
        # Ask what the first branch needs for the next level: the explorer's answer.
        widget.get_by_placeholder("branch id").fill(branch_id)
        widget.get_by_role("button", name="What does it take?").click()
        reply = widget.locator(".widget-html-content", has_text=f"Branch {branch_id}: score")
        reply.wait_for(state="visible", timeout=STEP_MS)
        text = " ".join(reply.inner_text().split())
        assert all(line in text for line in answer), (answer, text)
        chart = widget.locator(".widget-output img").first
        first_chart = chart.get_attribute("src")
        assert chart.evaluate("i => i.complete && i.naturalWidth") > 0

        # Type the new value into the slider's readout and press Enter.
        slider = sliders.filter(has=page.get_by_text(here.sliders[key].description, exact=True))
        readout = slider.locator(".widget-readout")
        readout.click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(f"{value:g}")
        page.keyboard.press("Enter")
        shown = wait_for_counts(page, table, want)
        assert shown == want, f"{key} = {value}: the explorer shows {shown}, evaluate gives {want}"
        assert float(readout.inner_text()) == value
        assert key in widget.inner_text()                              # the policy diff names the parameter
        # The chart is redrawn (the output widget holds a new image) and loads.
        assert wait_until(page, lambda: chart.get_attribute("src") != first_chart), "the chart was not redrawn"
        assert wait_until(page, lambda: chart.evaluate("i => i.complete && i.naturalWidth") > 0)

        # The reset button brings the baseline's counts back.
        widget.get_by_role("button", name="Reset to baseline").click()
        assert wait_for_counts(page, table, baseline) == baseline
        assert float(readout.inner_text()) == policy[key]

        # Five presses of an arrow key on another slider's handle (each one an update).
        other = sliders.filter(has=page.get_by_text(here.sliders[arrow_key].description, exact=True))
        other.locator(".noUi-handle").focus()
        step = here.sliders[arrow_key].step
        for _ in range(round(abs(arrow_value - policy[arrow_key]) / step)):
            page.keyboard.press("ArrowRight" if arrow_value > policy[arrow_key] else "ArrowLeft")
        shown = wait_for_counts(page, table, arrow_want)
        assert shown == arrow_want, (f"{arrow_key} = {arrow_value}: the explorer shows {shown}, "
                                     f"evaluate gives {arrow_want}")
        assert float(other.locator(".widget-readout").inner_text()) == arrow_value

        # A setting that breaks a rule shows the explorer's message in its column; the counts stay.
        if broken:
            bad_key, bad_value = broken
            bad = sliders.filter(has=page.get_by_text(here.sliders[bad_key].description, exact=True))
            bad.locator(".widget-readout").click()
            page.keyboard.press("ControlOrMeta+a")
            page.keyboard.type(f"{bad_value:g}")
            page.keyboard.press("Enter")
            message = widget.get_by_text(here.message[:40])
            message.wait_for(state="visible", timeout=STEP_MS)
            assert here.message in " ".join(message.inner_text().split())
            assert shown_counts(table) == arrow_want
            inside(message, column(table))
        # The collapsed sliders (the balance of the dimensions) open with a click on their header.
        hidden = [d for d, el in zip(descriptions, sliders.all()) if not el.is_visible()]
        for header in widget.locator(".jupyter-widget-Collapse-header").all():
            header.click()
        assert all(sliders.filter(has=page.get_by_text(d, exact=True)).is_visible() for d in hidden), hidden
        # Nothing spills out of its box: the readouts stay in view beside their sliders (in the
        # sliders' column, or inside the accordion's border).
        for readout in sliders.locator(".widget-readout").all():
            inside(readout, column(readout))

        # In a narrow window the counts' column goes below the sliders' and nothing is cut off.
        page.set_viewport_size({"width": 720, "height": 1000})
        controls = column(widget.get_by_role("button", name="Reset to baseline"))
        assert wait_until(page, lambda: column(table).bounding_box()["y"] >= controls.bounding_box()["y"]
                          + controls.bounding_box()["height"]), (column(table).bounding_box(), controls.bounding_box())
        for readout in sliders.locator(".widget-readout").all():
            inside(readout, column(readout))
        inside(message, column(table))
        assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
    finally:
        page.close()
    assert not console.unexpected(), "\n".join(console.unexpected())


def test_a_committed_notebook_shows_its_figures(browser, lab):
    """The committed figures of a notebook of notebooks/ (the one with the most) load, without running it."""
    def n_images(path):
        nb = nbformat.read(path, as_version=4)
        return sum(k.startswith("image/") for c in nb.cells for o in c.get("outputs", [])
                   for k in o.get("data", {}))
    counts = {p: n_images(p) for p in sorted(NOTEBOOKS.glob("*.ipynb"))}
    assert counts, f"no notebook in {NOTEBOOKS}"
    source = max(counts, key=counts.get)
    assert counts[source] > 0, "no committed notebook holds a figure"
    shutil.copy(source, lab.root / source.name)

    page, console = open_notebook(browser, lab, source.name,
                                  kernel=nbformat.read(source, as_version=4).metadata.kernelspec.display_name)
    try:
        images = page.locator(".jp-OutputArea-output img")
        page.wait_for_function(f"() => document.querySelectorAll('.jp-OutputArea-output img').length "
                               f">= {counts[source]}", timeout=UI_MS)
        assert images.count() == counts[source]
        page.wait_for_function("() => [...document.querySelectorAll('.jp-OutputArea-output img')]"
                               ".every(i => i.complete)", timeout=UI_MS)
        widths = images.evaluate_all("is => is.map(i => i.naturalWidth)")
        assert all(w > 0 for w in widths), f"{source.name}: figures that do not load (naturalWidth {widths})"
    finally:
        page.close()
    assert not console.unexpected(), "\n".join(console.unexpected())
