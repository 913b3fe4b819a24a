"""A bare TCP listener for the SSRF tests: it counts the connections it accepts, so that a
call the guard refused can be shown to have made none."""

import socket
import threading

OK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


class AcceptCounter:
    """A TCP listener that counts connections and answers each with `response`, sent verbatim
    (a tiny 200 unless changed)."""

    def __init__(self, host: str = "127.0.0.1", family=socket.AF_INET):
        self.response = OK_RESPONSE
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepts = 0
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            with conn:
                conn.settimeout(2)
                try:
                    self.requests.append(conn.recv(65536))
                    conn.sendall(self.response)
                except OSError:
                    pass

    def close(self):
        self.sock.close()
