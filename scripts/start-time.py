#!/usr/bin/env python3
"""Start-to-ready time and idle memory of the service binary.

Starts the binary on an empty data directory (SQLite, defaults) N times, polls /readyz
every 2 ms until it answers 200, then reads VmRSS one second later.

    scripts/start-time.py target/release/saga-account --runs 5
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=18080)
    args = parser.parse_args()
    env = dict(os.environ, HTTP_PORT=str(args.port), GRPC_PORT=str(args.port + 1), PROM_PORT=str(args.port + 2),
               BIND_ADDRESS="127.0.0.1", JWT_SECRET="start-time")
    for _ in range(args.runs):
        data = tempfile.mkdtemp(prefix="start-time-")
        started = time.perf_counter()
        process = subprocess.Popen([os.path.abspath(args.binary)], cwd=data, env=dict(env, DATA_DIR=data),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except Exception:
                if process.poll() is not None:
                    raise SystemExit("the service exited during start")
                time.sleep(0.002)
        ready_ms = (time.perf_counter() - started) * 1000
        time.sleep(1)
        with open(f"/proc/{process.pid}/status") as status:
            rss_kb = int(status.read().split("VmRSS:")[1].split()[0])
        print(f"start to ready (empty SQLite): {ready_ms:.0f} ms; idle RSS {rss_kb / 1024:.1f} MiB")
        process.terminate()
        process.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
