#!/usr/bin/env python3
"""dkim_verify.py DOMAIN_JSON EML — verify each DKIM-Signature of one message with dkimpy,
taking public keys only from the dns_records of GET /v1/domains/{domain}.
Prints one line per signature: '<algorithm> <True|False>'."""
import json, re, sys, dkim
d = json.load(open(sys.argv[1]))
records = {r["name"].rstrip(".").lower(): r["value"].encode() for r in d["dns_records"] if r["type"] == "TXT"}
def dnsfunc(name, timeout=5):
    return records.get(name.decode().rstrip(".").lower(), b"")
msg = open(sys.argv[2], "rb").read()
sigs = [v for k, v in dkim.rfc822_parse(msg)[0] if k.lower() == b"dkim-signature"]
for i, s in enumerate(sigs):
    algo = re.search(rb"a=\s*([\w-]+)", s).group(1).decode()
    print(algo, dkim.DKIM(msg).verify(idx=i, dnsfunc=dnsfunc))
