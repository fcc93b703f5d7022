"""threadserver.py - a listening socket on 127.0.0.1 whose connections
are served by threads, for tests that play a server no kvstored of today
is (a server before protocol v2, a server giving odd answers). A subclass
gives serve(conn); ENDPOINT is "127.0.0.1:PORT"; close() stops accepting."""

import socket
import threading


class ThreadServer:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.endpoint = "127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)    # wakes the accept() (Linux)
        except OSError:
            pass
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return                              # closed
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        raise NotImplementedError
