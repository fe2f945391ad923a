#!/usr/bin/env bash
# Runs the io_uring half of the suite under AddressSanitizer (nightly Rust):
# the library's unit tests and the TCP integration tests, each restricted
# to the io_uring backend, where buffers and fds live until completions.
#
#   scripts/asan-uring.sh
#
# Exit status 0 when every test passed with no ASan report; 2 with a
# message when it cannot run here (no nightly toolchain). Where the kernel
# lacks io_uring the suite runs with io_uring tests skipped, as usual.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "asan-uring: skipped: no nightly toolchain (rustup toolchain install nightly)"
    exit 2
fi
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Zsanitizer=address"
export RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/asan}
export MUDUO_TEST_POLLERS=uring
# Leak detection stays on: a leaked ring buffer or connection fails the run.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
exec cargo +nightly test -p muduo --target "$target" \
    --lib --test uring --test tcp_stress --test tcp_connection --test tcp_echo \
    --test tcp_client --test tcp_server --test send_file
