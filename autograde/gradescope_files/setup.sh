#!/usr/bin/env bash
# Gradescope runs this once, as root and with network, when it builds the autograder's image
# (Ubuntu; 22.04 has Python 3.10). It installs Python, the kit's pinned dependencies and the kit
# (shipped in kit/), creates the unprivileged user the run phase executes as, and lays out
# /autograder (python -m autograde.gradescope prepare: private files, the generated assignment,
# MNIST). Nothing is cloned: all the kit needs is in this zip or on the package registries.
set -euo pipefail
SOURCE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="${AUTOGRADER_ROOT:-/autograder}"
# PyPI's Linux torch wheels pull in the CUDA libraries (gigabytes) that grading never uses; the
# CPU-only build of the same version comes from PyTorch's own index. TORCH_INDEX_URL= (empty)
# installs PyPI's build instead.
TORCH_INDEX_URL="${TORCH_INDEX_URL-https://download.pytorch.org/whl/cpu}"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip ca-certificates >/dev/null

RUN_AS="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_as"])' "$SOURCE/settings.json")"
case "$RUN_AS" in
  [0-9]*) ;;  # a numeric UID[:GID] needs no account
  *) id -u "$RUN_AS" >/dev/null 2>&1 \
       || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS" ;;
esac

python3 -m venv "$ROOT/venv"
pip_install() { "$ROOT/venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@"; }
pip_install --upgrade pip setuptools wheel
pip_install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} -r "$SOURCE/kit/requirements.txt"
pip_install --no-deps -r "$SOURCE/kit/requirements-nodeps.txt"
# The requirements files decide which Python versions work; the kit itself is plain Python.
pip_install --no-deps --no-build-isolation --ignore-requires-python -e "$SOURCE/kit"
chmod -R a+rX "$ROOT/venv" "$SOURCE/kit"

"$ROOT/venv/bin/python" -m autograde.gradescope prepare --root "$ROOT"
