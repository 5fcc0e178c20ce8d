"""The host tools in a device-only install (pip install ., as on a Pi: no TensorFlow, Keras
or matplotlib). Each works where it can, and otherwise says in one line which extra to
install. The missing packages are made unimportable in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import fer2013_dir

from fer_pi.vision.modelfile import models_dir

# the Keras files are in the repository's models/ and not in the wheel (a device install has
# no use for them), so a non-editable install, as in .ci/run, finds them only here
KERAS_SEED = Path(__file__).resolve().parents[2] / "models" / "fer_seed.keras"

BLOCK = ("import sys\n"
         "for name in ('keras', 'tensorflow', 'matplotlib'):\n"
         "    sys.modules[name] = None  # import fails, as where it is not installed\n")


def tool(module: str, *args: str) -> subprocess.CompletedProcess:
    code = BLOCK + f"from {module} import main\nsys.exit(main({list(args)!r}))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


def one_error_line(proc: subprocess.CompletedProcess, prog: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith(f"{prog}: error:")]
    return line


def test_fer_train_says_which_extra(tmp_path):
    line = one_error_line(tool("fer_tools.train", "--arch", "tiny", "--epochs", "1", "--out",
                               str(tmp_path / "run")), "fer-train")
    assert "pip install 'fer-pi[train]'" in line and "keras" in line
    assert not (tmp_path / "run").exists()


def test_fer_convert_says_which_extra_not_that_the_model_is_bad(tmp_path):
    line = one_error_line(tool("fer_tools.convert", str(KERAS_SEED),
                               "--out", str(tmp_path / "m.tflite")), "fer-convert")
    assert "pip install 'fer-pi[train]'" in line and "not a readable" not in line


def test_fer_eval_scores_a_tflite_model_without_matplotlib(tmp_path):
    data = fer2013_dir()
    model = models_dir() / "fer_seed_int8.tflite"
    proc = tool("fer_tools.evaluate", str(model), "--limit", "140", "--out", str(tmp_path),
                "--data", str(data))
    assert proc.returncode == 0, proc.stderr
    assert "no confusion PNG: matplotlib is not installed" in proc.stderr
    assert (tmp_path / "eval_fer_seed_int8_PublicTest.json").is_file()
    assert not list(Path(tmp_path).glob("*.png"))
    line = one_error_line(tool("fer_tools.evaluate", str(KERAS_SEED),
                               "--limit", "140", "--data", str(data)), "fer-eval")
    assert "pip install 'fer-pi[train]'" in line


def test_demo_and_bench_run_without_scikit_image(tmp_path):
    """A Pi install has no scikit-image: the demo clip's face ships in the package, so
    fer-pi --demo and fer-bench work; the detection benchmark's scenes say which extra."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "SDL_VIDEODRIVER": "dummy"}
    block = "import sys\nsys.modules['skimage'] = None\n"
    out = tmp_path / "demo.jsonl"
    demo = subprocess.run([sys.executable, "-c", block + "from fer_pi.app.cli import main\n"
                           f"sys.exit(main(['--demo', '--headless', '--max-frames', '30', "
                           f"'--output', {str(out)!r}]))"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert demo.returncode == 0, demo.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 30 and sum(len(x["faces"]) for x in lines) > 0

    def bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", block + "from fer_pi.devtools.bench import "
                               f"main\nsys.exit(main({list(args)!r}))"],
                              capture_output=True, text=True, timeout=300, env=env)

    infer = bench("--stage", "infer", "--frames", "5", "--warmup", "1", "--threads", "1",
                  "--no-flip-tta", "--json")
    assert infer.returncode == 0, infer.stderr
    assert json.loads(infer.stdout)["runs"][0]["stages"]["infer_real"]["p50"] > 0
    line = one_error_line(bench("--stage", "detect"), "fer-bench")
    assert "pip install 'fer-pi[demo]'" in line
