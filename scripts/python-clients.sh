#!/usr/bin/env bash
# The vendor-side Python clients the tests drive bmcd with, each in its own venv
# under target/ (made once; idempotent). Run by `make test` before the tests, so
# that the tests themselves need no network:
#   target/sushy-venv                      sushy (Ironic's Redfish library)
#   target/persona-venvs/sushy             sushy with its built-in Dell extension
#   target/persona-venvs/sushy-oem-idrac   sushy + sushy-oem-idrac (takes over the 'dell' entry point)
#   target/persona-venvs/proliantutils     proliantutils + the pins it needs to import
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# Tests running in parallel may call this at the same time: one at a time.
mkdir -p "$ROOT/target"
exec 9>"$ROOT/target/.python-clients.lock"
flock 9

venv() {  # venv DIR PROBE PACKAGE...
  local dir=$1 probe=$2; shift 2
  if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "$probe" 2>/dev/null; then return 0; fi
  echo "python-clients: making $dir ($*)"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check "$@"
  "$dir/bin/python" -c "$probe"
}

venv "$ROOT/target/sushy-venv" "import sushy" sushy==5.14.0
venv "$ROOT/target/persona-venvs/sushy" "import sushy.oem.dell" sushy==5.14.0
venv "$ROOT/target/persona-venvs/sushy-oem-idrac" "import sushy_oem_idrac" sushy==5.14.0 sushy-oem-idrac==6.0.0
venv "$ROOT/target/persona-venvs/proliantutils" "import proliantutils.redfish.redfish" \
  proliantutils==2.16.3 pysnmp-lextudio==5.0.34 pyasn1==0.6.0 pyasn1-modules==0.4.0 sushy==5.14.0
echo "python-clients: ready"
