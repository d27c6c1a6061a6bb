#!/usr/bin/env bash
# One entry point for developers, the README and CI.
#
#   bash scripts/dev.sh demo      set up (if needed) and run `proxilion demo`
#   bash scripts/dev.sh test      set up (if needed) and run the whole test suite:
#                                 cargo fmt/clippy/test/doc, ruff, mypy --strict, stubtest,
#                                 pytest (native backend, then the backend-sensitive tests
#                                 again on the pure-Python reference backend, then the
#                                 native-heavy tests under GC stress)
#   bash scripts/dev.sh bench     run benches/ (pytest-benchmark, native vs reference)
#   bash scripts/dev.sh setup     only build: venv + release build of the extension
#
# Everything is cached inside the checkout: .venv/ (Python tools) and target/ (Rust build).
# Needs only: a Rust toolchain, python3 (3.10+) and pip, and network access to the registries.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

PY="${PYTHON:-python3}"
VENV="$here/.venv"
export CARGO_TARGET_DIR="$here/target"
# Keep pip quiet and deterministic; never prompt.
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv in .venv"
        "$PY" -m venv "$VENV"
    fi
    # Re-install the tool set only when the requirements change.
    local stamp="$VENV/.requirements.sha"
    local want
    want="$(cat requirements-dev.txt | sha256sum | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        log "installing development requirements"
        "$VENV/bin/python" -m pip install -q --upgrade pip
        "$VENV/bin/python" -m pip install -q -r requirements-dev.txt
        echo "$want" > "$stamp"
    fi
}

build_ext() {
    # maturin develop compiles the extension into python/proxilion/ and installs the package
    # into .venv in editable mode. Cargo only rebuilds what changed.
    log "building the native extension (release)"
    VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop --release --quiet
}

setup() {
    ensure_venv
    build_ext
}

start_redis() {
    # Tests marked `redis` need a real server. Install Debian's redis-server if missing and
    # start a private one on 127.0.0.1 on a free port; export its URL for the tests.
    if ! command -v redis-server >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
            log "installing redis-server (Debian package)"
            (apt-get install -y -qq redis-server >/dev/null 2>&1 ||
                { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq redis-server >/dev/null 2>&1; }) || true
        fi
    fi
    if ! command -v redis-server >/dev/null 2>&1; then
        log "redis-server unavailable: redis tests will fail (PROXILION_REDIS_URL unset)"
        return 0
    fi
    local port
    port="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    REDIS_DIR="$(mktemp -d "$here/target/redis.XXXXXX")"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no \
        --dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
        --logfile "$REDIS_DIR/redis.log" >/dev/null
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export PROXILION_REDIS_URL="redis://127.0.0.1:$port/0"
    log "redis-server on 127.0.0.1:$port"
    trap 'kill "$(cat "$REDIS_DIR/redis.pid" 2>/dev/null)" 2>/dev/null || true' EXIT
}

run_tests() {
    local py="$VENV/bin/python"
    log "cargo fmt --check"
    cargo fmt --all -- --check
    log "cargo clippy -D warnings"
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    log "cargo test"
    cargo test --workspace --quiet
    log "cargo doc -D warnings"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
    log "ruff"
    "$VENV/bin/ruff" check python tests benches
    "$VENV/bin/ruff" format --check python tests benches
    log "mypy --strict"
    "$VENV/bin/mypy" --strict python/proxilion
    log "stubtest (python/proxilion/_core.pyi against the built module)"
    "$py" -m mypy.stubtest proxilion._core --allowlist scripts/stubtest-allowlist.txt
    log "benches import and collect (they are run by 'scripts/dev.sh bench')"
    "$py" -m pytest -q -p no:cacheprovider --collect-only benches >/dev/null
    start_redis
    log "pytest (native backend)"
    PROXILION_BACKEND=native "$py" -m pytest -q -p no:cacheprovider tests "$@"
    log "pytest -m backend (reference backend)"
    PROXILION_BACKEND=reference "$py" -m pytest -q -p no:cacheprovider -m backend tests "$@"
    log "pytest --gc-stress (the native-heavy tests, collecting every few allocations)"
    PROXILION_BACKEND=native "$py" -X faulthandler -m pytest -q -p no:cacheprovider --gc-stress \
        tests/test_scan.py tests/test_guard_result.py tests/test_sign.py \
        tests/test_sign_canonical.py tests/test_drift_engine.py tests/test_drift_recording.py \
        tests/test_limit_engine.py tests/test_chain_canonical.py tests/test_chain_merkle.py \
        tests/test_chain_verify.py tests/test_audit_fastpath.py tests/test_mac.py \
        tests/test_stats_accumulators.py tests/test_memory_integrity.py \
        tests/test_agent_trust.py tests/test_keys.py tests/test_memory_native.py \
        tests/test_agent_native.py tests/test_agent_msg_native.py tests/test_capsule_create.py \
        tests/test_intent_gate.py \
        "$@"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
    setup) setup ;;
    demo) setup; exec "$VENV/bin/proxilion" demo "$@" ;;
    test) setup; run_tests "$@" ;;
    bench) setup; exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider benches --benchmark-only "$@" ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
