#!/usr/bin/env python3
"""Queue scale: N queued recipients (default 1,000,000) whose destination answers 421.

  POSTWERK_BIN=target/release/postwerk python3 bench/queue_scale.py [N]

1. Starts `postwerk serve` (SQLite, embedded) with example.test routed to a server that
   answers every connection `421 4.7.0 try again later`, and measures its RSS.
2. Queues N recipients through POST /v1/messages/batch (50 recipients per message).
3. Measures RSS again once the queue is in place (the issue's target: at most 1 KB per
   queued recipient beyond the baseline), and the queue as GET /v1/queue reports it.
4. Makes the queue due now (`postwerk queue retry`), stops the server (SIGTERM), routes
   example.test to an accepting sink and starts the server again: prints the time from
   start to the first delivery (target: under 5 s).

Prints one `key=value` line per figure. Needs python3 only (no Postfix).
"""
import asyncio, http.client, json, os, signal, socket, subprocess, sys, tempfile, threading, time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
BIN = os.environ.get("POSTWERK_BIN", "target/release/postwerk")
PER_MESSAGE, PER_BATCH, THREADS = 50, 200, 4


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def serve_thread(handler, port):
    """Runs an asyncio SMTP-ish server on 127.0.0.1:port in a daemon thread."""
    def run():
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(asyncio.start_server(handler, "127.0.0.1", port))
        loop.run_until_complete(server.serve_forever())
    threading.Thread(target=run, daemon=True).start()


async def refuse(reader, writer):
    writer.write(b"421 4.7.0 try again later\r\n")
    await writer.drain(); writer.close()


first_delivery = []


async def accept(reader, writer):
    writer.write(b"220 sink ESMTP\r\n"); await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            break
        up = line.upper()
        if up.startswith(b"EHLO") or up.startswith(b"HELO"):
            writer.write(b"250-sink\r\n250 8BITMIME\r\n")
        elif up.startswith(b"DATA"):
            writer.write(b"354 go\r\n"); await writer.drain()
            while (await reader.readline()) not in (b".\r\n", b""):
                pass
            if not first_delivery:
                first_delivery.append(time.time())
            writer.write(b"250 2.0.0 ok\r\n")
        elif up.startswith(b"QUIT"):
            writer.write(b"221 bye\r\n"); await writer.drain(); break
        else:
            writer.write(b"250 2.0.0 ok\r\n")
        await writer.drain()
    writer.close()


def config(work, http_port, route_port):
    with open(f"{work}/postwerk.toml", "w") as f:
        f.write(f"""data_dir = "{work}/data"
[http]
listen = "127.0.0.1:{http_port}"
[delivery]
ehlo_name = "mta.bench.test"
retry_base = "1h"
retry_max = "1h"
[delivery.routes]
"example.test" = "127.0.0.1:{route_port}"
[smtp.submission]
enabled = false
[smtp.inbound]
enabled = false
[privacy]
consent_required = {{}}
""")


def cli(work, *args):
    return subprocess.run([BIN, "--config", f"{work}/postwerk.toml", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


def start(work, http_port):
    env = dict(os.environ, POSTWERK_LOG="warn")
    p = subprocess.Popen([BIN, "--config", f"{work}/postwerk.toml", "serve"], env=env,
                         stdout=open(f"{work}/serve.log", "a"), stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2); c.request("GET", "/")
            c.getresponse().read(); return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def get(http_port, key, path):
    c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=600)
    c.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    return json.loads(c.getresponse().read())


def inject(http_port, key):
    messages = N // PER_MESSAGE
    batches = [(i, min(PER_BATCH, messages - i)) for i in range(0, messages, PER_BATCH)]
    lock, errors = threading.Lock(), []

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=600)
        while True:
            with lock:
                if not batches:
                    return
                start, count = batches.pop()
            msgs = [{"from": "bench@example.com", "stream": "broadcast", "text": "queued",
                     "to": [f"r{(start + m) * PER_MESSAGE + k}@example.test" for k in range(PER_MESSAGE)]}
                    for m in range(count)]
            c.request("POST", "/v1/messages/batch", json.dumps({"messages": msgs}),
                      {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
            r = c.getresponse(); body = r.read()
            if r.status != 202:
                errors.append((r.status, body[:200]))

    t0 = time.time()
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    [t.start() for t in threads]; [t.join() for t in threads]
    if errors:
        raise SystemExit(f"injection failed: {errors[:2]}")
    return time.time() - t0


def main():
    work = tempfile.mkdtemp(prefix="pwscale.", dir="/var/tmp")
    http_port, refuse_port, sink_port = free_port(), free_port(), free_port()
    serve_thread(refuse, refuse_port)
    serve_thread(accept, sink_port)
    config(work, http_port, refuse_port)
    key = cli(work, "keys", "create", "--name", "bench", "--scopes", "send,read,write", "--quiet")
    cli(work, "domains", "add", "example.com")
    server = start(work, http_port)
    time.sleep(2)
    base = rss_kib(server.pid)
    print(f"recipients={N}")
    print(f"rss_baseline_kib={base}")
    secs = inject(http_port, key)
    print(f"inject_s={secs:.1f} inject_recipients_per_s={N / secs:.0f}")
    time.sleep(20)
    loaded = rss_kib(server.pid)
    queue = get(http_port, key, "/v1/queue")["total"]
    print(f"queue_total={queue['total']} queued={queue['queued']} deferred={queue['deferred']}")
    print(f"rss_loaded_kib={loaded} bytes_per_queued_recipient={(loaded - base) * 1024 / N:.1f}")
    cli(work, "queue", "retry", "--domain", "example.test")
    server.send_signal(signal.SIGTERM); server.wait(timeout=60)
    config(work, http_port, sink_port)
    t0 = time.time()
    server = start(work, http_port)
    for _ in range(600):
        if first_delivery:
            break
        time.sleep(0.01)
    if first_delivery:
        print(f"restart_to_first_delivery_s={first_delivery[0] - t0:.2f}")
    else:
        print("restart_to_first_delivery_s=none_within_6s")
    print(f"rss_after_restart_kib={rss_kib(server.pid)}")
    server.send_signal(signal.SIGTERM); server.wait(timeout=60)
    subprocess.run(["rm", "-rf", work])


main()
