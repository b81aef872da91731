#!/usr/bin/env bash
# Headless Chromium loads the http_server dashboard: the DOM it renders must show a non-empty
# CPU chart and a finished job at 100%. Keeps a screenshot (with a second job running) as a
# test artefact. Installs Debian's chromium when it is missing; when that is impossible, exits
# 77 (meson's skip) and says why, loudly.
#   browser_dashboard.sh <http_server program> <build dir for artefacts>
set -euo pipefail
server=$1
artefacts=$2/artefacts
mkdir -p "$artefacts"

skip() {
  echo "************************************************************************" >&2
  echo "*** browser_dashboard SKIPPED: $*" >&2
  echo "************************************************************************" >&2
  exit 77
}
fail() {
  echo "browser_dashboard FAILED: $*" >&2
  exit 1
}

find_chromium() { command -v chromium || command -v chromium-browser || true; }
chrome=$(find_chromium)
if [ -z "$chrome" ]; then
  echo "browser_dashboard: chromium is missing: apt-get install chromium" >&2
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    sudo -n true 2>/dev/null || skip "chromium is not installed and installing it needs root"
    as_root=(sudo -n)
  fi
  log=$artefacts/apt-get.log
  install() {
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq chromium >>"$log" 2>&1
  }
  # Stale package lists are the usual failure: update once, then try again.
  if ! install; then
    "${as_root[@]}" apt-get update -qq >>"$log" 2>&1 && install ||
      skip "apt-get install chromium failed ($log): $(tail -n 2 "$log" | tr '\n' ' ')"
  fi
  chrome=$(find_chromium)
  [ -n "$chrome" ] || skip "chromium was installed but is not on PATH"
fi
echo "browser_dashboard: using $("$chrome" --version 2>/dev/null || echo "$chrome")"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The server prints the port it bound; read that line (a real event, with a time limit).
exec {server_out}< <(exec "$server" --port 0 --workers 2)
server_pid=$!
read -r -t 30 -u "$server_out" line || fail "http_server did not report its port"
[[ $line =~ http://127\.0\.0\.1:([0-9]+)/ ]] || fail "unexpected first line: $line"
url=http://127.0.0.1:${BASH_REMATCH[1]}
echo "browser_dashboard: $line"

post_job() {
  curl -sS --max-time 30 -X POST -H 'Content-Type: application/json' -d "$1" "$url/jobs" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}

# A job of about a CPU-second per worker, so the chart has something to show; wait for its end.
job=$(post_job '{"kind": "primes", "n": 5000000, "partitions": 64}')
result=$(curl -sS --max-time 70 "$url/jobs/$job?wait=60" |
  /usr/bin/python3 -c 'import json, sys; j = json.load(sys.stdin); print(j["status"], j.get("result"))')
[ "$result" = "done 348513" ] || fail "job $job ended as '$result', expected 'done 348513'"

# The monitor samples every 200 ms: poll /cpu until it has samples (bounded).
samples=0
for _ in $(seq 100); do
  samples=$(curl -sS --max-time 10 "$url/cpu" |
    /usr/bin/python3 -c 'import json, sys; print(len(json.load(sys.stdin)["times"]))')
  [ "$samples" -gt 0 ] && break
  sleep 0.1
done
[ "$samples" -gt 0 ] || fail "/cpu has no samples"

chromium_run() {
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d -p "$work")" --virtual-time-budget=4000 "$@" "$url/" \
    2>>"$artefacts/chromium.log"
}

dom=$artefacts/dashboard.html
chromium_run --dump-dom >"$dom" || fail "chromium --dump-dom failed (see $artefacts/chromium.log)"
/usr/bin/python3 - "$dom" "$job" <<'EOF' || fail "the dashboard's DOM is not as expected: $dom"
import re, sys
html = open(sys.argv[1], encoding="utf-8").read()
job = sys.argv[2]

def attrs(tag_pattern):
    m = re.search(tag_pattern, html)
    if not m:
        return None
    return dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(0)))

canvas = attrs(r'<canvas[^>]*id="cpu-chart"[^>]*>')
row = attrs(r'<tr[^>]*data-job-id="%s"[^>]*>' % job)
body = attrs(r'<body[^>]*>')
print("canvas:", canvas)
print("job row:", row)
print("body:", body)
ok = (canvas is not None and int(canvas["data-samples"]) > 0 and int(canvas["data-series"]) > 0
      and int(canvas.get("data-pool-samples", "0")) > 0
      and row is not None and row["data-status"] == "done" and row["data-progress"] == "100"
      and int(body["data-updates"]) > 0 and "348,513" in html)
sys.exit(0 if ok else 1)
EOF

# The screenshot shows the live state: the finished job, and a second one at work.
busy=$(post_job '{"kind": "primes", "n": 30000000, "partitions": 400}')
curl -sS --max-time 10 "$url/jobs/$busy" >/dev/null
shot=$artefacts/dashboard.png
chromium_run --screenshot="$shot" --window-size=1280,900 >/dev/null ||
  fail "chromium --screenshot failed (see $artefacts/chromium.log)"
[ -s "$shot" ] || fail "no screenshot written"
echo "browser_dashboard: screenshot $shot"
curl -sS --max-time 10 -X DELETE "$url/jobs/$busy" >/dev/null

kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" = 0 ] || fail "http_server exited with $status after SIGTERM"
echo "browser_dashboard: passed"
