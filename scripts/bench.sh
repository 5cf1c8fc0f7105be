#!/usr/bin/env bash
# The benchmark suite in one command (docs/benchmarks.md): builds the server
# and the load tool in release mode, then runs `switchboard-bench run` with
# the given options, e.g.
#   bash scripts/bench.sh                                  # SQLite, 10k/100k/1M, 16 and 64 connections
#   bash scripts/bench.sh --sizes 10000 --postgres postgres://postgres@127.0.0.1:5432/test
#   bash scripts/bench.sh --smoke                          # a few seconds, checks that it all starts
# Needs only a Rust toolchain (and a Postgres server for --postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p switchboard -p switchboard-bench
exec target/release/switchboard-bench run "$@"
