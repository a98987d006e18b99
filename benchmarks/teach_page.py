"""The teaching page's frame rate and the background training's speed while it is served.

Starts `internalize teach` (defaults: the goals world, the fast learner) on 127.0.0.1, opens the
page in headless Chromium (Debian's chromium and chromium-driver), and has a scripted person
label as in tests/teach/test_browser.py (forward facing right: approve; facing left:
disapprove). For each pace of the speed control it measures, over `--seconds`, the frames the
page received and drew per second and the learner's environment steps per second in the hidden
environments; then, after the person leaves, the steps per second of the learner training on
the ISR alone while the page goes on showing it. Saves a screenshot (`--screenshot`) and prints
the figures as JSON.

    python benchmarks/teach_page.py --screenshot docs/images/teach.png
"""

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1300,760",
)
PERSON = """
teach.onFrame(frame => {
  if (frame.action === 2 && (frame.state.heading === 0 || frame.state.heading === 2))
    teach.label(frame.state.heading === 0 ? 1 : -1);
});
"""


def status(base: str, token: str) -> dict:
    with urllib.request.urlopen(f"{base}/status?token={token}", timeout=10) as page:
        return json.loads(page.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speeds", type=float, nargs="+", default=[3.0, 30.0, 100.0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--screenshot", default=None)
    args = parser.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = Path(tempfile.mkdtemp(prefix="teach-bench-")) / "session"
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "internalize.cli", "teach", "--port", "0", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = None
    while url is None:
        line = server.stdout.readline()
        if not line:
            raise SystemExit("the server did not start")
        found = re.search(r"open (\S+)", line)
        url = found.group(1) if found else None
    base, token = url.split("/?")[0], url.split("token=")[1]
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={tempfile.mkdtemp()}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    figures = {"speeds": []}
    try:
        driver.get(url)
        while not driver.execute_script("return teach.frames > 0"):
            time.sleep(0.1)
        driver.execute_script(PERSON)
        for speed in args.speeds:
            driver.execute_script(f"teach.control('speed', {speed})")
            time.sleep(2.0)  # the new pace settles
            frames, before, started = (
                driver.execute_script("return teach.frames"),
                status(base, token),
                time.monotonic(),
            )
            time.sleep(args.seconds)
            elapsed = time.monotonic() - started
            after = status(base, token)
            figures["speeds"].append(
                {
                    "speed": speed,
                    "frames_per_second": (driver.execute_script("return teach.frames") - frames)
                    / elapsed,
                    "labels_per_second": (after["labels"] - before["labels"]) / elapsed,
                    "learner_steps_per_second": (after["learner_steps"] - before["learner_steps"])
                    / elapsed,
                }
            )
            print(json.dumps(figures["speeds"][-1]), flush=True)
        if args.screenshot:
            driver.save_screenshot(args.screenshot)
        driver.execute_script("teach.control('speed', 3); teach.control('leave')")
        time.sleep(2.0)
        before, started = status(base, token), time.monotonic()
        time.sleep(args.seconds)
        after = status(base, token)
        figures["alone_learner_steps_per_second"] = (
            after["learner_steps"] - before["learner_steps"]
        ) / (time.monotonic() - started)
        figures["labels"] = after["labels"]
    finally:
        driver.quit()
        server.send_signal(2)
        server.wait(timeout=60)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
