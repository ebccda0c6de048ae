#!/usr/bin/env bash
# Creates the virtual environment (first argument, default .venv) and installs the package with its dev extra:
# what `make install` and CI run. torch==2.13.0 comes first and from pip, which finds the local CPU wheel through
# its own configuration; a bare `torch` requirement from any package would otherwise pull a CUDA build of several
# gigabytes. The rest goes through uv where it can be had: on two cores it installs the same versions in about a
# minute where pip takes three to four (parallel downloads and unpacking), which is most of a fresh clone's wait
# before its first test or first answer. Without uv (no network to PyPI for it, or it fails) pip does the same.
set -euo pipefail
venv=${1:-.venv}
python3 -m venv "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q torch==2.13.0
# --compile-bytecode: pip writes the .pyc files at install, uv does not by default, and with PYTHONDONTWRITEBYTECODE
# set every test process would compile torch and transformers again on import. The constraint keeps the torch
# installed above: uv reads no pip configuration, so a dependency asking for a newer one would take a CUDA build.
if "$py" -m pip install -q uv && "$venv/bin/uv" pip install --python "$py" -q --compile-bytecode \
        --constraint <(echo torch==2.13.0) -e ".[dev]"; then
    exit 0
fi
echo "uv could not install the package: pip instead"
"$py" -m pip install -q -e ".[dev]"
