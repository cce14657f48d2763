#!/usr/bin/env python3
"""Console pages: server time of every /ui/ page with a large store.

  POSTWERK_BIN=target/release/postwerk python3 bench/console_pages.py
  EVENTS=20000 CONTACTS=2000 R=20 python3 bench/console_pages.py      # quick smoke run

1. Starts `postwerk serve` (SQLite store in a temporary data dir under /var/tmp; with
   POSTWERK_STORE_URL set, that store instead) with example.test routed to an SMTP sink
   that accepts everything (Postfix's smtp-sink if installed, else a Python one) and a
   local name server that answers NXDOMAIN at once (so /ui/domains/{domain} does its DNS
   checks without the network). Creates an owner user and an API key with every scope.
2. Fills the store through the API: CONTACTS contacts (PUT /v1/contacts/{email}, one in
   20 with a consent), some suppressions, and messages of 50 recipients each, 100 messages
   per POST /v1/messages/batch, from THREADS keep-alive connections, until every
   recipient is delivered; each recipient gives an `accepted` and a `delivered` event, so
   EVENTS/2 recipients (spread over the contacts' addresses). Prints the counts the
   store holds (sqlite3 on the database, or GET /v1/queue and the batch answers).
3. Signs in through /ui/login and requests every page R times (after 3 warm-ups),
   reading `Server-Timing: app;dur=…` and the client's wall time; one line per page, then
   the worst p95 against the target (50 ms).

Python 3 standard library only.
"""
import asyncio, glob, http.client, json, os, re, shutil, socket, subprocess, sys, tempfile
import threading, time, urllib.parse

BIN = os.environ.get("POSTWERK_BIN", "target/release/postwerk")
EVENTS = int(os.environ.get("EVENTS", "1000000"))
CONTACTS = int(os.environ.get("CONTACTS", "100000"))
R = int(os.environ.get("R", "50"))
WARMUP = int(os.environ.get("WARMUP", "3"))
PAGE_BUDGET_S = float(os.environ.get("PAGE_BUDGET_S", "60"))  # stop a slow page after this, >= 5 samples
THREADS = int(os.environ.get("THREADS", "8"))
KEEP = os.environ.get("KEEP", "0") == "1"          # keep the work directory (reuse with WORK=)
WORK = os.environ.get("WORK")                       # reuse a filled work dir: skip the fill
STORE_URL = os.environ.get("POSTWERK_STORE_URL")
PER_MESSAGE = int(os.environ.get("RCPTS", "50"))  # recipients per message in the fill
PER_BATCH = 100
TARGET_MS = 50.0
PASSWORD = "bench-console-password-1"
OWNER = "owner@example.com"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def in_thread(coro_factory):
    def run():
        loop = asyncio.new_event_loop()
        loop.run_until_complete(coro_factory())
        loop.run_forever()
    threading.Thread(target=run, daemon=True).start()


async def sink_session(reader, writer):
    writer.write(b"220 sink ESMTP\r\n"); await writer.drain()
    while True:
        line = await reader.readline()
        if not line:
            break
        up = line.upper()
        if up.startswith(b"EHLO") or up.startswith(b"HELO"):
            writer.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif up.startswith(b"DATA"):
            writer.write(b"354 go\r\n"); await writer.drain()
            while (await reader.readline()) not in (b".\r\n", b""):
                pass
            writer.write(b"250 2.0.0 ok\r\n")
        elif up.startswith(b"QUIT"):
            writer.write(b"221 bye\r\n"); await writer.drain(); break
        else:
            writer.write(b"250 2.0.0 ok\r\n")
        await writer.drain()
    writer.close()


class NxDomain(asyncio.DatagramProtocol):
    """Answers every DNS query NXDOMAIN (same id and question, RA set)."""
    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 12:
            return
        qd = data[12:]
        end = 0
        while end < len(qd) and qd[end] != 0:
            end += qd[end] + 1
        question = qd[:end + 5]
        flags = 0x8183 | (int.from_bytes(data[2:4], "big") & 0x0100)
        self.transport.sendto(data[:2] + flags.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00\x00\x00"
                              + question, addr)


def start_sink(port):
    if shutil.which("smtp-sink") and os.environ.get("PYSINK") != "1":
        args = ["smtp-sink"] + (["-u", "nobody"] if os.geteuid() == 0 else []) + [f"127.0.0.1:{port}", "1024"]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    in_thread(lambda: asyncio.start_server(sink_session, "127.0.0.1", port))
    return None


def start_dns(port):
    async def make():
        await asyncio.get_running_loop().create_datagram_endpoint(NxDomain, local_addr=("127.0.0.1", port))
    in_thread(make)


def config(work, http_port, sink_port, dns_port):
    store = f'[store]\nurl = "{STORE_URL}"\n' if STORE_URL else ""
    with open(f"{work}/postwerk.toml", "w") as f:
        f.write(f"""data_dir = "{work}/data"
[http]
listen = "127.0.0.1:{http_port}"
[rate_limits]
per_key = 4000000000
per_tenant = 4000000000
per_ip = 4000000000
[delivery]
ehlo_name = "mta.bench.test"
[delivery.routes]
"example.test" = "127.0.0.1:{sink_port}"
[dns]
nameservers = ["127.0.0.1:{dns_port}"]
[smtp.submission]
enabled = false
[smtp.inbound]
enabled = false
[privacy]
consent_required = {{}}
{store}""")


def cli(work, *args, stdin=None):
    return subprocess.run([BIN, "--config", f"{work}/postwerk.toml", *args], check=True, input=stdin,
                          capture_output=True, text=True).stdout.strip()


def start(work, http_port):
    env = dict(os.environ, POSTWERK_LOG="warn")
    p = subprocess.Popen([BIN, "--config", f"{work}/postwerk.toml", "serve"], env=env,
                         stdout=open(f"{work}/serve.log", "a"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            c = http.client.HTTPConnection("127.0.0.1", http_port, timeout=2); c.request("GET", "/")
            c.getresponse().read(); return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


class Api:
    def __init__(self, port, key):
        self.port, self.key = port, key
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.key}"}
        if body is not None:
            body = json.dumps(body); headers["Content-Type"] = "application/json"
        for attempt in range(3):
            try:
                self.c.request(method, path, body, headers)
                r = self.c.getresponse(); data = r.read()
                return r.status, data
            except (http.client.HTTPException, OSError):
                self.c.close(); self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                if attempt == 2:
                    raise


def parallel(port, key, jobs, fn):
    """Runs fn(api, job) for every job from THREADS keep-alive connections; returns errors."""
    lock, errors, jobs = threading.Lock(), [], list(reversed(jobs))

    def worker():
        api = Api(port, key)
        while True:
            with lock:
                if not jobs:
                    return
                job = jobs.pop()
            err = fn(api, job)
            if err:
                with lock:
                    errors.append(err)
    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    [t.start() for t in threads]; [t.join() for t in threads]
    return errors


def address(i):
    return f"c{i}@example.test"


def fill_contacts(port, key):
    def one(api, i):
        st, body = api.call("PUT", f"/v1/contacts/{address(i)}",
                            {"attributes": {"first_name": f"Person{i}", "city": ["Berlin", "Gdansk", "Lyon"][i % 3],
                                            "n": i}, "lists": ["news"] if i % 2 else ["news", "offers"]})
        if st not in (200, 201):
            return ("contact", st, body[:200])
        if i % 20 == 0:
            st, body = api.call("POST", f"/v1/contacts/{address(i)}/consents",
                                {"purpose": "newsletter", "lawful_basis": "consent", "source": "bench",
                                 "wording": "Yes, send me news", "wording_version": "v1"})
            if st != 201:
                return ("consent", st, body[:200])
    chunks = list(range(CONTACTS))
    errs = parallel(port, key, chunks, one)
    if errs:
        raise SystemExit(f"contacts failed ({len(errs)}): {errs[:2]}")
    sup = [f"gone{i}@example.test" for i in range(min(1000, CONTACTS))]
    errs = parallel(port, key, sup, lambda api, e: None if api.call(
        "POST", "/v1/suppressions", {"email": e, "reason": "manual"})[0] in (200, 201) else ("sup", e))
    if errs:
        print(f"note: {len(errs)} suppressions refused (continuing)", file=sys.stderr)


def fill_messages(port, key, recipients):
    messages = -(-recipients // PER_MESSAGE)
    batches = [(m, min(PER_BATCH, messages - m)) for m in range(0, messages, PER_BATCH)]
    pool = max(CONTACTS, PER_MESSAGE)

    def one(api, batch):
        start_m, count = batch
        msgs = []
        for m in range(start_m, start_m + count):
            first = m * PER_MESSAGE
            n = min(PER_MESSAGE, recipients - first)
            msgs.append({"from": "news@example.com", "subject": f"Bench {m}", "text": f"Message {m}\n",
                         "stream": "broadcast" if m % 4 else "transactional", "tags": [f"t{m % 10}"],
                         "to": [address((first + k) % pool) for k in range(n)]})
        st, body = api.call("POST", "/v1/messages/batch", {"messages": msgs})
        if st != 202:
            return (st, body[:300])
    errs = parallel(port, key, batches, one)
    if errs:
        raise SystemExit(f"batch send failed ({len(errs)}): {errs[:2]}")
    return messages


def queue_total(port, key):
    st, body = Api(port, key).call("GET", "/v1/queue")
    return json.loads(body)["total"]


def store_counts(work):
    db = [p for p in glob.glob(f"{work}/data/*.db") + glob.glob(f"{work}/data/*.sqlite*")
          if not p.endswith(("-wal", "-shm"))]
    if STORE_URL or not db or not shutil.which("sqlite3"):
        return None
    out = subprocess.run(["sqlite3", "-readonly", db[0],
                          "select count(*) from events; select type, count(*) from events group by type;"
                          "select count(*) from contacts;"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else f"sqlite3 error: {out.stderr.strip()}"


# --- the console -------------------------------------------------------------------------

class Console:
    def __init__(self, port):
        self.port, self.cookies = port, {}
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def request(self, method, path, form=None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form); headers["Content-Type"] = "application/x-www-form-urlencoded"
        t0 = time.perf_counter()
        self.c.request(method, path, body, headers)
        r = self.c.getresponse(); data = r.read()
        wall = (time.perf_counter() - t0) * 1000
        for k, v in r.getheaders():
            if k.lower() == "set-cookie":
                name, _, rest = v.partition("=")
                value = rest.split(";", 1)[0]
                if value:
                    self.cookies[name.strip()] = value
                else:
                    self.cookies.pop(name.strip(), None)
        m = re.search(r"app;dur=([0-9.]+)", r.getheader("Server-Timing") or "")
        return r.status, data, (float(m.group(1)) if m else None), wall

    def login(self, email, password):
        st, page, _, _ = self.request("GET", "/ui/login")
        m = re.search(rb'name="csrf"\s+value="([^"]+)"', page) or re.search(rb'value="([^"]+)"\s+name="csrf"', page)
        if st != 200 or not m:
            raise SystemExit(f"login page: {st}, no csrf field")
        st, body, _, _ = self.request("POST", "/ui/login", {"csrf": m.group(1).decode(), "email": email,
                                                           "password": password, "code": ""})
        if "pw_session" not in self.cookies or "pw_csrf" not in self.cookies:
            raise SystemExit(f"sign-in failed: {st} {body[:300]!r}")


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s) + 0.5)) - 1))]


def measure(console, pages):
    worst = (0.0, "")
    for name, method, path, form in pages:
        server, wall, statuses = [], [], set()
        t0 = time.time()
        for i in range(WARMUP + R):
            st, body, dur, w = console.request(method, path, form() if form else None)
            statuses.add(st)
            if i >= WARMUP:
                if dur is None:
                    raise SystemExit(f"page={name}: no Server-Timing (status {st}) {body[:200]!r}")
                server.append(dur); wall.append(w)
                if len(server) >= 5 and time.time() - t0 > PAGE_BUDGET_S:
                    break
        p95 = pct(server, 95)
        bad = "" if statuses <= {200} else f" status={','.join(map(str, sorted(statuses)))}"
        print(f"page={name} p50_ms={pct(server, 50):.1f} p95_ms={p95:.1f} max_ms={max(server):.1f} "
              f"wall_p95_ms={pct(wall, 95):.1f} n={len(server)}{bad}", flush=True)
        if p95 > worst[0]:
            worst = (p95, name)
    return worst


def main():
    t_start = time.time()
    work = WORK or tempfile.mkdtemp(prefix="pwconsole.", dir="/var/tmp")
    reuse = bool(WORK)
    http_port, sink_port, dns_port = free_port(), free_port(), free_port()
    sink = start_sink(sink_port)
    start_dns(dns_port)
    config(work, http_port, sink_port, dns_port)
    if reuse:
        key = open(f"{work}/key").read().strip()
    else:
        key = cli(work, "keys", "create", "--name", "bench",
                  "--scopes", "send,read,write,import,export,privacy,admin", "--quiet")
        open(f"{work}/key", "w").write(key)
        cli(work, "domains", "add", "example.com")
        cli(work, "users", "create", OWNER, "--role", "owner", stdin=PASSWORD + "\n")
    server = start(work, http_port)
    try:
        if not reuse:
            recipients = -(-EVENTS // 2)
            print(f"target events={EVENTS} contacts={CONTACTS} (recipients={recipients}, "
                  f"{PER_MESSAGE} per message, {PER_BATCH} messages per batch, threads={THREADS})", flush=True)
            t0 = time.time(); fill_contacts(http_port, key); t1 = time.time()
            print(f"fill contacts={CONTACTS} consents={-(-CONTACTS // 20)} contacts_s={t1 - t0:.1f} "
                  f"contacts_per_s={CONTACTS / (t1 - t0):.0f}", flush=True)
            messages = fill_messages(http_port, key, recipients); t2 = time.time()
            print(f"fill messages={messages} recipients={recipients} accept_s={t2 - t1:.1f} "
                  f"recipients_per_s={recipients / (t2 - t1):.0f}", flush=True)
            while True:
                total = queue_total(http_port, key)
                if total["total"] == 0:
                    break
                time.sleep(1)
            t3 = time.time()
            print(f"fill delivered_all_s={t3 - t1:.1f} (delivery drained {t3 - t2:.1f} s after the last batch) "
                  f"fill_total_s={t3 - t0:.1f}", flush=True)
            # a webhook, so its page lists one (created after the fill: no deliveries to it)
            Api(http_port, key).call("POST", "/v1/webhooks", {"url": "https://hooks.example.test/pw",
                                                              "events": ["bounced"]})
        else:
            while queue_total(http_port, key)["total"]:
                time.sleep(1)
        counts = store_counts(work)
        if counts is not None:
            lines = counts.splitlines()
            print(f"store events={lines[0]} contacts={lines[-1]} by_type=" +
                  ",".join(l.replace("|", ":") for l in lines[1:-1]), flush=True)
        else:
            print("store counts: not SQLite or no sqlite3; see the fill lines", flush=True)

        api = Api(http_port, key)
        msg_id = json.loads(api.call("GET", "/v1/messages?limit=1")[1])
        msg_id = (msg_id.get("messages") or msg_id.get("data") or [{}])[0].get("id")
        console = Console(http_port)
        console.login(OWNER, PASSWORD)
        csrf = lambda: {"csrf": console.cookies["pw_csrf"]}
        who = address(5)
        pages = [
            ("overview", "GET", "/ui/", None),
            ("messages", "GET", "/ui/messages", None),
            ("message", "GET", f"/ui/messages/{msg_id}", None),
            ("messages_search_recipient", "POST", "/ui/messages", lambda: dict(csrf(), recipient=who)),
            ("suppressions", "GET", "/ui/suppressions", None),
            ("domains", "GET", "/ui/domains", None),
            ("domain", "GET", "/ui/domains/example.com", None),
            ("streams", "GET", "/ui/streams", None),
            ("webhooks", "GET", "/ui/webhooks", None),
            ("keys", "GET", "/ui/keys", None),
            ("users", "GET", "/ui/users", None),
            ("account", "GET", "/ui/account", None),
            ("privacy", "GET", "/ui/privacy", None),
            ("privacy_lookup", "POST", "/ui/privacy", lambda: dict(csrf(), email=who)),
            ("privacy_audit", "GET", "/ui/privacy/audit", None),
        ]
        print(f"pages R={R} warmup={WARMUP} (server = Server-Timing app;dur, wall = client round trip); "
              f"message={msg_id} person={who}", flush=True)
        worst, name = measure(console, pages)
        verdict = "yes" if worst < TARGET_MS else "no"
        print(f"overall worst_p95_ms={worst:.1f} page={name} target_ms={TARGET_MS:.0f} under_target={verdict}")
        print(f"run_s={time.time() - t_start:.0f} work={work if KEEP or reuse else '(removed)'}")
    finally:
        server.terminate(); server.wait(timeout=60)
        if sink:
            sink.terminate()
        if not (KEEP or reuse):
            shutil.rmtree(work, ignore_errors=True)


main()
