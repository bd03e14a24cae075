# shellcheck shell=bash
# Shared by scripts/test and scripts/serve (sourced, not run): make sure the project's virtual
# environment exists and matches requirements-dev.txt and pyproject.toml.
#
#   source scripts/lib/venv.sh
#   ensure_venv            # run from the repository root
#
# The environment is (re)installed when .venv is missing, or when requirements-dev.txt or
# pyproject.toml is newer than the stamp file written after the last successful install.

VENV_DIR=".venv"
VENV_STAMP="$VENV_DIR/.autopack-installed"

_find_python() {
    local candidate version
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [[ -n "$candidate" ]] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        version="$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$candidate"
            return 0
        fi
        echo "skipping $candidate: Python $version is older than 3.11" >&2
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

_venv_is_stale() {
    [[ ! -f "$VENV_STAMP" ]] ||
        [[ requirements-dev.txt -nt "$VENV_STAMP" ]] ||
        [[ pyproject.toml -nt "$VENV_STAMP" ]]
}

ensure_venv() {
    local python
    if [[ ! -x "$VENV_DIR/bin/python" ]]; then
        python="$(_find_python)"
        echo "==> creating $VENV_DIR with $python"
        "$python" -m venv "$VENV_DIR"
    fi
    if _venv_is_stale; then
        echo "==> installing requirements-dev.txt and autopack (editable) into $VENV_DIR"
        if [[ ! -x "$VENV_DIR/bin/uv" ]]; then
            "$VENV_DIR/bin/pip" install --quiet uv
        fi
        "$VENV_DIR/bin/uv" pip install --quiet --python "$VENV_DIR/bin/python" \
            -r requirements-dev.txt
        "$VENV_DIR/bin/uv" pip install --quiet --python "$VENV_DIR/bin/python" --no-deps -e .
        touch "$VENV_STAMP"
    fi
}
