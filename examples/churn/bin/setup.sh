#!/bin/sh
# setup.sh REQUIREMENTS MARKER: a fresh virtualenv in .venv with the pinned requirements.
# The marker (the output mlp tracks) is written last, with what pip installed: the stages
# that use the venv list it as an input, so a new pin reruns them.
set -eu
req=$1
marker=$2
py=${PYTHON:-python3}
"$py" -m venv --clear .venv
.venv/bin/python -m pip install --quiet --no-input --disable-pip-version-check -r "$req"
.venv/bin/python -m pip freeze --disable-pip-version-check > "$marker.tmp"
mv "$marker.tmp" "$marker"
echo "installed into .venv:"
cat "$marker"
