#!/usr/bin/env python3
"""An MTA-STS policy host for Postwerk's end-to-end tests (loopback only).

Serves GET /.well-known/mta-sts.txt over HTTPS with the given certificate: the body is
DIR/<Host header>.txt as text/plain, or 404 when there is no such file. Writes DIR/.ready
once listening, and logs each request's host to DIR/requests.log.
usage: policy_host.py HOST PORT DIR CERT KEY
"""
import http.server, os, ssl, sys

host, port, root, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        name = (self.headers.get("Host") or "").split(":")[0].lower()
        with open(os.path.join(root, "requests.log"), "a") as log:
            log.write(f"{name} {self.path}\n")
        path = os.path.join(root, f"{name}.txt")
        if self.path != "/.well-known/mta-sts.txt" or "/" in name or not os.path.isfile(path):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers()
            return
        body = open(path, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((host, port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
open(os.path.join(root, ".ready"), "w").close()
server.serve_forever()
