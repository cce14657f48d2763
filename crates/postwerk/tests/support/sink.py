#!/usr/bin/env python3
"""An independent SMTP receiver for Postwerk's end-to-end tests (loopback only).

Stores each accepted message as DIR/<n>.eml with DIR/<n>.json (peer, envelope, TLS).
Supports PIPELINING, 8BITMIME, SMTPUTF8 and, with --cert/--key, STARTTLS.
Scripted behaviour by recipient local-part prefix:
  hard*   -> 550 5.1.1 at RCPT          soft*  -> 451 4.2.0 at RCPT (always)
  throttle* -> 421 4.7.0 "too many connections" at RCPT (always)
  flaky*  -> 451 4.3.0 at RCPT on the first attempt for that address, then accepted
  drop*   -> connection closed in the middle of DATA on the first attempt, then accepted
usage: sink.py HOST PORT DIR [--cert FILE --key FILE]
"""
import argparse, asyncio, json, os, ssl, time

ap = argparse.ArgumentParser()
ap.add_argument("host"); ap.add_argument("port", type=int); ap.add_argument("dir")
ap.add_argument("--cert"); ap.add_argument("--key")
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)
tls = None
if args.cert:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
count = 0
seen = set()

def rcpt_reply(rcpt):
    local = rcpt.split("@")[0].lower()
    if local.startswith("hard"): return b"550 5.1.1 <%s>: user unknown\r\n" % rcpt.encode()
    if local.startswith("soft"): return b"451 4.2.0 mailbox busy, try later\r\n"
    if local.startswith("throttle"): return b"421 4.7.0 too many connections, slow down\r\n"
    if local.startswith("flaky") and rcpt not in seen:
        seen.add(rcpt); return b"451 4.3.0 temporary failure\r\n"
    return b"250 2.1.5 ok\r\n"

async def handle(reader, writer):
    global count
    peer = writer.get_extra_info("peername")
    state = {"tls": None}
    writer.write(b"220 sink.test ESMTP ready\r\n"); await writer.drain()
    mail_from, rcpts = None, []
    try:
        while True:
            line = await reader.readline()
            if not line: break
            cmd = line.decode("utf-8", "replace").rstrip("\r\n"); up = cmd.upper()
            if up.startswith("EHLO") or up.startswith("HELO"):
                state["ehlo"] = cmd[5:].strip()
                ext = [b"250-sink.test", b"250-PIPELINING", b"250-8BITMIME", b"250-SMTPUTF8", b"250-ENHANCEDSTATUSCODES"]
                if tls and not state["tls"]: ext.append(b"250-STARTTLS")
                ext.append(b"250 SIZE 52428800")
                writer.write(b"\r\n".join(ext) + b"\r\n")
            elif up == "STARTTLS" and tls and not state["tls"]:
                writer.write(b"220 2.0.0 go ahead\r\n"); await writer.drain()
                await writer.start_tls(tls)
                obj = writer.get_extra_info("ssl_object")
                state["tls"] = {"version": obj.version(), "cipher": obj.cipher()[0]}
                mail_from, rcpts = None, []
                continue
            elif up.startswith("MAIL FROM:"):
                mail_from, rcpts = cmd[10:].strip().split(" ")[0].strip("<>"), []
                writer.write(b"250 2.1.0 ok\r\n")
            elif up.startswith("RCPT TO:"):
                r = cmd[8:].strip().split(" ")[0].strip("<>")
                rep = rcpt_reply(r)
                if rep.startswith(b"250"): rcpts.append(r)
                writer.write(rep)
            elif up == "DATA":
                if not rcpts:
                    writer.write(b"554 5.5.1 no valid recipients\r\n"); await writer.drain(); continue
                writer.write(b"354 go ahead\r\n"); await writer.drain()
                drop = [r for r in rcpts if r.split("@")[0].lower().startswith("drop") and ("drop", r) not in seen]
                chunks = []
                while True:
                    l = await reader.readline()
                    if not l: return
                    if drop and len(chunks) > 3:
                        for r in drop: seen.add(("drop", r))
                        writer.transport.abort(); return
                    if l == b".\r\n": break
                    if l.startswith(b".."): l = l[1:]
                    chunks.append(l)
                count += 1; n = count
                tmp = os.path.join(args.dir, f"{n}.eml.tmp")
                with open(tmp, "wb") as f: f.write(b"".join(chunks))
                meta = {"peer": peer[0], "ehlo": state.get("ehlo"), "mail_from": mail_from, "rcpt": rcpts, "tls": state["tls"], "t": time.time()}
                with open(os.path.join(args.dir, f"{n}.json"), "w") as f: json.dump(meta, f)
                os.rename(tmp, os.path.join(args.dir, f"{n}.eml"))
                writer.write(b"250 2.0.0 queued as %d\r\n" % n)
                mail_from, rcpts = None, []
            elif up == "RSET":
                mail_from, rcpts = None, []; writer.write(b"250 2.0.0 ok\r\n")
            elif up == "NOOP": writer.write(b"250 2.0.0 ok\r\n")
            elif up == "QUIT":
                writer.write(b"221 2.0.0 bye\r\n"); await writer.drain(); break
            else: writer.write(b"502 5.5.2 not implemented\r\n")
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    finally:
        writer.close()

async def main():
    srv = await asyncio.start_server(handle, args.host, args.port, limit=1 << 24)
    open(os.path.join(args.dir, ".ready"), "w").close()
    async with srv: await srv.serve_forever()

asyncio.run(main())
