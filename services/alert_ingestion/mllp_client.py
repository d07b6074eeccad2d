"""The MLLP client every sender of ours uses: the HL7 simulator, the PCD-05 status sender, the
HL7 benchmark and the tests. python-hl7's MLLPClient connects without a timeout, sends with one
send() (which may write part of a large message) and returns whatever one recv() brings, so an
acknowledgement arriving in pieces is cut, and a connection the peer closed returns b"" for ever.
This one connects with a timeout, sends the whole frame and reads the whole acknowledgement, and
raises ConnectionError when the peer closes before the acknowledgement's end."""
import socket

import hl7.client

END_OF_BLOCK = hl7.client.EB + hl7.client.CR


class MllpClient(hl7.client.MLLPClient):
    def __init__(self, host: str, port: int, timeout: float, encoding: str = "utf-8"):
        self.socket = socket.create_connection((host, port), timeout=timeout)
        self.encoding = encoding

    def send(self, data: bytes) -> bytes:
        """Sends one framed message and returns its framed acknowledgement."""
        self.socket.sendall(data)
        answer = b""
        while not answer.endswith(END_OF_BLOCK):
            more = self.socket.recv(hl7.client.RECV_BUFFER)
            if not more:
                raise ConnectionResetError(
                    "the peer closed the connection before the end of its acknowledgement")
            answer += more
        return answer
