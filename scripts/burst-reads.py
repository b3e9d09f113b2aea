#!/usr/bin/env python3
# A burst of authenticated reads, all sent at the same instant: opens N connections to a
# service on 127.0.0.1:18080 (signs one customer up first), then sends GET /info/person on
# all of them at once and counts the status codes. Standard library only.
#   python3 scripts/burst-reads.py 2000
import asyncio, json, sys, urllib.request, collections, time
base = "http://127.0.0.1:18080"
req = urllib.request.Request(base + "/api/account/auth/signup", data=json.dumps({"password":"password-123","firstname":"B","lastname":"U","email":"burst%d@example.com" % time.time_ns(),"address":"1 St","phone_number":"09%08d" % (time.time_ns() % 10**8)}).encode(), headers={"Content-Type":"application/json"})
tok = json.load(urllib.request.urlopen(req))["access_token"]
N = int(sys.argv[1])
async def one(gate):
    r, w = await asyncio.open_connection("127.0.0.1", 18080)
    await gate.wait()
    w.write(("GET /api/account/info/person HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n" % tok).encode())
    await w.drain()
    line = await r.readline()
    w.close()
    return line.split()[1].decode()
async def main():
    gate = asyncio.Event()
    tasks = [asyncio.create_task(one(gate)) for _ in range(N)]
    await asyncio.sleep(2)
    t = time.time(); gate.set()
    res = await asyncio.gather(*tasks, return_exceptions=True)
    print(N, "requests at once:", dict(collections.Counter(r if isinstance(r, str) else type(r).__name__ for r in res)), "in %.2f s" % (time.time() - t))
asyncio.run(main())
