#!/usr/bin/env python3
"""Drives two running replicas for a while and counts failed requests and stale reads.

Each worker signs up its own customer, then loops: reads its profile on both replicas,
writes a new shipping address through one replica and polls the other until it sees the
new value. Any non-2xx answer is a failure; a value that does not show up on the other
replica within --stale-after seconds is a stale read. Meant to run while something is
broken on purpose (a Redis master killed, Redis restarted) to show that nothing fails.

    scripts/replica-check.py http://127.0.0.1:18080 http://127.0.0.1:28080 --seconds 30
"""
import argparse
import json
import threading
import time
import urllib.error
import urllib.request
import uuid


def call(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except Exception as e:  # connection refused, timeout
        return 0, str(e)


def worker(args, index, stats, lock, deadline):
    a, b = args.replicas
    tag = uuid.uuid4().hex[:12]
    status, body = call("POST", f"{a}/api/account/auth/signup", {
        "password": "password-123", "firstname": "Check", "lastname": f"W{index}",
        "email": f"check-{tag}@example.com", "address": "0", "phone_number": f"+{tag}"})
    if status != 201:
        with lock:
            stats["failures"].append(f"signup {status} {body}")
        return
    token = body["access_token"]
    n = 0
    while time.time() < deadline:
        n += 1
        writer, reader = (a, b) if n % 2 else (b, a)
        for base in (a, b):
            status, body = call("GET", f"{base}/api/account/info/person", token=token)
            with lock:
                stats["requests"] += 1
                if status != 200:
                    stats["failures"].append(f"GET person {status} {body}")
        address = f"{index}-{n}"
        status, body = call("PUT", f"{writer}/api/account/info/shipping",
                            {"address": address, "phone_number": f"+{tag}"}, token)
        with lock:
            stats["requests"] += 1
            if status != 200:
                stats["failures"].append(f"PUT shipping {status} {body}")
                continue
        start = time.time()
        while True:
            status, body = call("GET", f"{reader}/api/account/info/shipping", token=token)
            with lock:
                stats["requests"] += 1
                if status != 200:
                    stats["failures"].append(f"GET shipping {status} {body}")
            if status == 200 and body.get("address") == address:
                with lock:
                    stats["delays"].append(time.time() - start)
                break
            if time.time() - start > args.stale_after:
                with lock:
                    stats["stale"] += 1
                break
            time.sleep(0.002)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("replicas", nargs=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--stale-after", type=float, default=2.0)
    args = parser.parse_args()
    stats = {"requests": 0, "failures": [], "delays": [], "stale": 0}
    lock = threading.Lock()
    deadline = time.time() + args.seconds
    threads = [threading.Thread(target=worker, args=(args, i, stats, lock, deadline)) for i in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delays = sorted(stats["delays"])
    pick = lambda q: delays[min(len(delays) - 1, int(q * len(delays)))] * 1000 if delays else float("nan")
    print(f"requests: {stats['requests']}  failed: {len(stats['failures'])}  stale reads: {stats['stale']}")
    print(f"write seen on the other replica after: p50 {pick(0.5):.1f} ms  p99 {pick(0.99):.1f} ms  "
          f"max {pick(1.0):.1f} ms  ({len(delays)} writes)")
    for failure in stats["failures"][:10]:
        print("  failure:", failure)
    raise SystemExit(1 if stats["failures"] or stats["stale"] else 0)


if __name__ == "__main__":
    main()
