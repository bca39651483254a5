"""The step host: imports the heavy libraries once, then runs every step the xtask asks
for in a process forked from it.

Importing torch, transformers and optimum takes 10–16 s here, longer than most steps'
own work; a pipeline runs about 30 steps. The host pays it once. Each step still runs in
a process of its own (a child forked from the host, which never computes), so a step
starts from the same state as `python -m modelcrate.<step>` would, apart from the
modules already imported: what one step leaves behind (globals, torch settings, memory)
never reaches the next, and a crash ends the step, not the host.

The protocol, one line at a time:
- the host writes `\\x1eready` on stdout once its imports are done;
- the xtask writes a request as JSON: `{"module": "modelcrate.train", "args": ["--spec",
  "…"], "log": "…"}`;
- the child runs the module as `python -m` would, with those arguments; its stdout is the
  host's (the xtask shows it as progress) and its stderr goes to the file `log` (which the
  xtask quotes when the step fails);
- once the child has ended, the host writes `\\x1edone <exit code>` (negative: killed by
  that signal). The child's output precedes it on the same pipe.

Requests are run one at a time; the host ends when its stdin closes.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import json
import os
import runpy
import signal
import sys
import time
import traceback

# What the steps import, in the order they need it: the first four are nearly every
# step's cost. A module missing here is imported by the step itself, as before.
PRELOAD = (
    "torch",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "optimum.exporters.onnx",
    "optimum.onnxruntime",
    "onnxruntime.quantization",
    "peft",
    "sentence_transformers",
    "setfit",
    "datasets",
    "sklearn.linear_model",
    "skl2onnx",
    "torchvision",
)

# Starts every line the host itself writes on stdout; a step's output never does.
CONTROL = "\x1e"


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the xtask's Python steps in processes forked from one.")
    parser.add_argument(
        "--preload",
        default=",".join(PRELOAD),
        help="comma-separated modules to import once, before any step (default: what the steps use)",
    )
    args = parser.parse_args()
    started = time.monotonic()
    modules = [m for m in args.preload.split(",") if m]
    for module in modules:
        importlib.import_module(module)
    print(f"step host: {len(modules)} modules imported in {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    reply("ready")
    for line in iter(sys.stdin.buffer.readline, b""):
        request = json.loads(line)
        host = os.getpid()
        pid = os.fork()
        if pid == 0:
            end_with(host)
            run_child(request["module"], request["args"], request["log"])
        _, status = os.waitpid(pid, 0)
        reply(f"done {os.waitstatus_to_exitcode(status)}")


def reply(message: str) -> None:
    sys.stdout.write(f"{CONTROL}{message}\n")
    sys.stdout.flush()


def end_with(host: int) -> None:
    """Has the kernel kill this child if the host dies (the xtask interrupted, say): a
    step left running would hold the host's stdout open and train on for nobody."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != host:  # the host died before the request took effect
        os._exit(1)


def run_child(module: str, args: list[str], log: str) -> None:
    """Runs `module` as `python -m module args` would, in this forked child; never returns."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        # Python's warnings, tracebacks and the libraries' native messages all go to fd 2.
        errors = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(errors, 2)
        sys.argv = [module, *args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = exit_code(exit)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def exit_code(exit: SystemExit) -> int:
    """The status `python -m` ends with for this `SystemExit`: a message is printed and
    means 1, as the interpreter does."""
    if exit.code is None:
        return 0
    if isinstance(exit.code, int):
        return exit.code
    print(exit.code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    main()
