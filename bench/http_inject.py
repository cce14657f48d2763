#!/usr/bin/env python3
"""http_inject.py HOSTPORT KEY N SIZE THREADS DOMAIN — send N messages of about SIZE bytes
through POST /v1/messages/batch (100 per request) from THREADS keep-alive connections.
Prints 'accepted=N inject_s=T'."""
import http.client, json, sys, threading, time

hp, key, n, size, threads, dom = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
host, port = hp.split(":")
body_text = ("x" * 76 + "\n") * (size // 77)
batches = [(i, min(100, n - i)) for i in range(0, n, 100)]
lock = threading.Lock(); accepted = [0]; errors = []

def worker():
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    while True:
        with lock:
            if not batches: return
            start, cnt = batches.pop()
        msgs = [{"from": "bench@example.com", "to": [f"r{start + j}@{dom}"], "subject": f"bench {start + j}", "text": body_text} for j in range(cnt)]
        c.request("POST", "/v1/messages/batch", json.dumps({"messages": msgs}),
                  {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = c.getresponse(); data = r.read()
        if r.status == 202:
            with lock: accepted[0] += cnt
        else:
            errors.append((r.status, data[:200]))

t0 = time.time()
ts = [threading.Thread(target=worker) for _ in range(threads)]
[t.start() for t in ts]; [t.join() for t in ts]
print(f"accepted={accepted[0]} inject_s={time.time() - t0:.3f}" + (f" errors={errors[:2]}" if errors else ""))
