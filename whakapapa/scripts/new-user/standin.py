"""A loopback stand-in for kube-apiserver's Pod list, get and create (HTTP/1.1 keep-alive, no
Nagle): `python3 standin.py PORT`."""
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def pod(name):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": "u-" + name, "resourceVersion": "1"},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def log_message(self, *a): pass
    def send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/api/v1/namespaces/default/pods":
            self.send(200, {"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": "1"},
                            "items": [pod("checkout-0")]})
        elif path.startswith("/api/v1/namespaces/default/pods/"):
            self.send(200, pod(path.rsplit("/", 1)[1]))
        else:
            self.send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n) or b"{}")
        self.send(201, pod(body.get("metadata", {}).get("name", "x")))

srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
srv.serve_forever()
