"""Differential fuzz: random VNN-LIB properties over random networks, through the CLI's code path.

Each instance (``vnnlib_fuzz.instances``) is written as an ONNX network and a VNN-LIB 1.0 or 2.0
file, answered by ``python -m verifier``'s ``run`` and compared with the exact oracle built from
the generator's own weights and formula (constraints over several inputs included: the oracle's
MILP carries them). A ``sat`` is replayed through onnxruntime and must meet the generator's
formula, input constraints included; an ``unsat`` must not be contradicted by the oracle; a
refusal must be one the oracle expects (an input without a bound), and only then.

``FUZZ_EXAMPLES`` sets the number of instances per syntax (default 25, the slice ``make test``
runs; ``python -m bench fuzz`` runs more).
"""
from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from vnnlib_fuzz import expected, holds_at, instances, onnx_model, render_v1, render_v2

from verifier import __main__ as cli
from verifier.formats import FormatError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))


def _counterexample(lines):
    xs = [float(line.split()[1].rstrip(")")) for line in lines if line.lstrip("( ").startswith("X_")]
    return np.array(xs, dtype=np.float32)


def check(inst, text, folder):
    net_path, prop_path = folder / "net.onnx", folder / "prop.vnnlib"
    net_path.write_bytes(onnx_model(inst))
    prop_path.write_text(text)
    want = expected(inst)
    try:
        word, lines = cli.run(net_path, prop_path, 30.0)
    except FormatError as e:
        assert want == "refuse", f"refused ({e}) but the oracle says {want}\n{text}"
        return "refuse"
    assert want != "refuse", f"answered {word}, but the file must be refused\n{text}"
    if word == "sat":
        x = _counterexample(lines)
        session = ort.InferenceSession(str(net_path), providers=["CPUExecutionProvider"])
        y = session.run(None, {"x": x[None]})[0][0]
        assert holds_at(inst, x, y), f"sat with x={x}, y={y}, which is not unsafe\n{text}"
        assert want in ("sat", "either"), f"sat but the oracle says {want}\n{text}"
    elif word == "unsat":
        assert want in ("unsat", "either"), f"unsat but the oracle says {want}\n{text}"
    else:
        assert want == "either", f"{word} where the oracle decides {want}\n{lines}\n{text}"
    return word


@pytest.mark.parametrize("syntax", ["1.0", "2.0"])
def test_the_kit_answers_random_properties_as_the_exact_oracle_does(syntax, tmp_path_factory):
    seen = []

    @SETTINGS
    @given(inst=instances())
    def run(inst):
        text = render_v1(inst) if syntax == "1.0" else render_v2(inst)
        seen.append(check(inst, text, tmp_path_factory.mktemp("fuzz")))

    run()
    if os.environ.get("FUZZ_REPORT"):   # the bench's tally of the answers
        counts = {word: seen.count(word) for word in sorted(set(seen))}
        with open(os.environ["FUZZ_REPORT"], "a", encoding="utf-8") as report:
            report.write(f"VNN-LIB {syntax}: {len(seen)} instances, answers {counts}\n")
    # the slice covers every kind of answer
    if EXAMPLES >= 25:
        assert {"sat", "unsat"} <= set(seen), seen
