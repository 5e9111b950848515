# Sourced by bin/dev, bin/test and .ci/run: make sure .venv exists and holds this
# project installed editable with the extras named in $1 (e.g. "embedded,test"), at
# the versions constraints.txt names (bin/lock writes it). Reinstalls only when
# pyproject.toml, setup.py or constraints.txt changed or an extra is missing (stamp file).
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
    hash="$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -d' ' -f1)"
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
    # A first install takes a minute or more: say so, then one line a package.
    echo "installing tally[$extras] into .venv, each dependency at the version" \
        "constraints.txt pins (the first time: about a minute and a half) ..." >&2
    local line
    .venv/bin/python -m pip install --disable-pip-version-check --progress-bar off \
        -c constraints.txt -e ".[$extras]" | while IFS= read -r line; do
        case $line in
            "Collecting "*) line=${line#Collecting }; echo "  fetching ${line%%[^A-Za-z0-9._-]*}" ;;
            "Installing collected packages"*) echo "  installing them" ;;
        esac
    done >&2
    # pip's status, not the loop's, whatever the caller's pipefail.
    ((PIPESTATUS[0] == 0)) || return 1
    echo "installed in .venv" >&2
    echo "$hash $extras" >"$stamp"
}
