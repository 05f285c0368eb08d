"""The command line's shared options: help without Keras, JSON output, and refused options.

An option that does not apply to a run is refused with exit status 2 and a
one-line message, never silently ignored.
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from siamkit import cli
from siamkit.cli import main


def _one_line_error(capsys, argv, *fragments):
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"siamkit {argv[0]}: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_help_never_imports_keras():
    code = (
        "import contextlib, io, sys\n"
        "from siamkit.cli import COMMANDS, main\n"
        "for argv in [[], *([c] for c in COMMANDS), ['index', 'build'], ['index', 'add'], ['index', 'remove']]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "        try:\n"
        "            main([*argv, '--help'])\n"
        "        except SystemExit as exit:\n"
        "            assert exit.code == 0, argv\n"
        "    assert 'usage: siamkit' in out.getvalue(), argv\n"
        "print(sorted({'keras', 'tensorflow', 'jax', 'torch'} & set(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_choices_come_from_the_library():
    from siamkit.evaluation import report, verification
    from siamkit.runs import THRESHOLD_METHODS

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command in ("compare", "search", "dedupe", "serve"):
        method = next(a for a in sub[command]._actions if a.dest == "method")
        assert tuple(method.choices) == THRESHOLD_METHODS == verification.THRESHOLD_METHODS
    protocol = next(a for a in sub["evaluate"]._actions if a.dest == "protocol")
    assert tuple(protocol.choices) == report.PROTOCOLS


@pytest.mark.parametrize("command", [["compare", "RUN", "A", "B"], ["search", "IX", "Q"], ["embed", "RUN", "--data", "D"],
                                     ["serve", "RUN"], ["evaluate", "RUN"]])
def test_invert_and_no_invert(command):
    parser = cli.build_parser()
    assert parser.parse_args(command).invert is None
    assert parser.parse_args([*command, "--invert"]).invert is True
    assert parser.parse_args([*command, "--no-invert"]).invert is False


def test_options_that_do_not_apply_to_the_evaluation_are_refused(trained_run, capsys):
    run = trained_run.path
    _one_line_error(
        capsys, ["evaluate", run, "--protocol", "verification", "--ways", "3", "--shots", "2"],
        "--ways, --shots do not apply", "one-shot protocol, not 'verification'",
    )
    _one_line_error(
        capsys, ["evaluate", run, "--protocol", "oneshot", "--target-far", "0.01"],
        "--target-far does not apply", "verification protocol",
    )
    _one_line_error(capsys, ["evaluate", run, "--protocol", "retrieval", "--all-pairs"], "--all-pairs does not apply")
    _one_line_error(capsys, ["evaluate", run, "--scaling-neighbors", "3"], "--scaling-neighbors", "--local-scaling")
    _one_line_error(capsys, ["evaluate", run, "--no-invert"], "--invert does not apply", "--pairs-csv")


def test_a_two_tower_run_refuses_single_model_evaluation_options(tmp_path, capsys):
    run = tmp_path / "mm"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"towers": 2, "input_shape": [8, 8, 1], "input_shape_b": [16]}))
    (run / "model.keras").write_bytes(b"")  # never read: the options are refused first
    _one_line_error(capsys, ["evaluate", run, "--ways", "5", "--episodes", "10"], "--ways, --episodes do not apply",
                    "two-tower")
    _one_line_error(capsys, ["evaluate", run, "--protocol", "all"], "--protocol does not apply")


def test_training_options_that_the_loss_does_not_use_are_refused(tmp_path, capsys):
    out = tmp_path / "never"
    base = ["train", "--epochs", "1", "--out", out, "--quiet"]
    _one_line_error(capsys, [*base, "--loss", "contrastive", "--mining", "hard"], "--mining does not apply",
                    "'contrastive'")
    _one_line_error(capsys, [*base, "--loss", "contrastive", "--samples-per-class", "3"],
                    "--samples-per-class does not apply")
    _one_line_error(capsys, [*base, "--pairs-per-epoch", "100"], "--pairs-per-epoch does not apply", "'triplet'")
    _one_line_error(capsys, [*base, "--loss", "bce", "--head", "l1", "--margin", "0.5"], "--margin does not apply")
    _one_line_error(capsys, [*base, "--cache-dir", tmp_path / "cache"], "--cache-dir does not apply", "--stream")
    assert not out.exists()


def _digit_pngs(tmp_path):
    from siamkit import datasets

    x = datasets.load("digits").x
    paths = []
    for i in (0, 1):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.round(x[i][..., 0] * 255).astype("uint8")).save(path)
        paths.append(path)
    return paths


def test_compare_json_and_threshold_with_method(trained_run, tmp_path, capsys):
    a, b = _digit_pngs(tmp_path)
    capsys.readouterr()
    assert main(["compare", trained_run.path, str(a), str(b), "--threshold", "0.5", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == 0.5 and result["threshold_source"] == "given"
    assert isinstance(result["same"], bool) and result["same"] == (result["score"] <= 0.5)
    _one_line_error(capsys, ["compare", trained_run.path, a, b, "--threshold", "0.5", "--method", "eer"],
                    "--method does not apply", "--threshold")


def test_evaluate_json_prints_the_metrics_file(trained_run, tmp_path, capsys):
    run_dir = tmp_path / "run"  # a copy: other tests read the shared run's eval/metrics.json
    shutil.copytree(trained_run.path, run_dir)
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--protocol", "retrieval", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with open(run_dir / "eval" / "metrics.json", encoding="utf-8") as f:
        assert printed == json.load(f)
    assert printed["protocol"] == "retrieval" and 0.0 <= printed["retrieval"]["map_at_r"] <= 1.0
