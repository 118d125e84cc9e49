#!/usr/bin/env bash
# Installs what the build and the tests need and a fresh machine of our kind may lack. Idempotent.
# Node 20 + npm, Java 17 + Maven, Rust (rustup), Python 3.11 come with the machine; this checks them and adds the
# rest from Debian's packages, crates.io and PyPI.
set -euo pipefail
need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
# Browser tests drive Debian's Chromium through playwright-core (no browser download).
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing from Debian: ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [ "${java_major:-0}" -lt 17 ]; then echo "Java 17 or newer is required (found ${java_major:-none})" >&2; exit 1; fi
if ! command -v cargo >/dev/null; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; else
    echo "Rust (cargo) is required to build native/: install rustup" >&2; exit 1; fi
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
node -e 'const [maj]=process.versions.node.split(".");if(+maj<20){console.error("Node 20 or newer is required");process.exit(1)}'
echo "node $(node --version), npm $(npm --version), $(java -version 2>&1 | head -1), $(mvn -v 2>/dev/null | head -1), $(cargo --version)"
