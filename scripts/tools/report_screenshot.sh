#!/usr/bin/env bash
# A PNG of a report's landing page in headless Chromium, as README.md shows it:
#   make demo && scripts/tools/report_screenshot.sh [results/report.html] [docs/images/report.png]
set -euo pipefail
report=${1:-results/report.html}
out=${2:-docs/images/report.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome) ||
    { echo "report_screenshot: needs Chromium (apt-get install chromium)" >&2; exit 1; }
[ -f "$report" ] || { echo "report_screenshot: no report at $report: run make demo first" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
# --no-sandbox: Chromium refuses to run as root otherwise; the page is our own report.
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,800 \
    --virtual-time-budget=8000 --screenshot="$out" "file://$(realpath "$report")" >/dev/null 2>&1
echo "report_screenshot: $out"
