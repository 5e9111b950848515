# Sourced by bin/dev, bin/test and .ci/run: make sure .venv exists and holds this
# project installed editable with the extras named in $1 (e.g. "embedded,test"), at
# the versions constraints.txt names (bin/lock writes it). Reinstalls only when
# pyproject.toml or constraints.txt changed or an extra is missing (stamp file).
ensure_venv() {
    local want="$1" python="${PYTHON:-python3}" stamp=.venv/.tally-installed
    if [[ ! -x .venv/bin/python ]]; then
        "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
            echo "Tally needs Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
            return 1
        }
        echo "creating .venv with $("$python" --version)" >&2
        "$python" -m venv .venv
    fi
    local hash have_hash="" have_extras="" extras="$want" e
    hash="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
    [[ -f $stamp ]] && read -r have_hash have_extras <"$stamp"
    if [[ $have_hash == "$hash" ]]; then
        local missing=0
        for e in ${want//,/ }; do
            [[ ",$have_extras," == *",$e,"* ]] || missing=1
        done
        ((missing)) || return 0
        # Keep what was installed before, each extra once.
        extras="$(tr ',' '\n' <<<"$have_extras,$want" | awk 'NF && !seen[$0]++' | paste -sd,)"
    fi
    echo "installing tally[$extras] into .venv ..." >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c constraints.txt -e ".[$extras]"
    echo "$hash $extras" >"$stamp"
}
