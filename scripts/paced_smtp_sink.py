#!/usr/bin/env python3
"""An SMTP sink on loopback that answers every command a fixed time late, as a relay at the
other end of a network does: `paced_smtp_sink.py PORT DELAY_MS`.

Postfix's smtp-sink answers at once (or, with -w, whole seconds late and only before DATA),
and the aiosmtpd server of Tests/support holds every session's end-of-data reply behind any
other session's, so neither can stand in for a relay some milliseconds away. This one is a
plain asyncio protocol: each reply is written DELAY_MS after the command that asked for it,
independently for every connection, in order within one, and the message is thrown away.
It says what it needs to (EHLO with 8BITMIME, SMTPUTF8, SIZE; MAIL, RCPT, DATA, RSET, NOOP,
QUIT) and no more. Used by scripts/bench_dkim.py; prints "ready" on stdout once listening.
"""
import asyncio
import collections
import sys


class Session(asyncio.Protocol):
    def __init__(self, delay):
        self.delay = delay
        self.queue = collections.deque()
        self.due = 0.0
        self.buffer = bytearray()
        self.in_data = False
        self.scanned = 0
        self.closing = False

    def connection_made(self, transport):
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.reply(b"220 paced-sink ESMTP\r\n")

    def reply(self, text, close=False):
        # Replies leave in the order asked for: each is due no earlier than the one before.
        self.due = max(self.loop.time() + self.delay, self.due)
        self.queue.append((text, close))
        self.loop.call_at(self.due, self.write_next)

    def write_next(self):
        text, close = self.queue.popleft()
        if self.transport.is_closing():
            return
        self.transport.write(text)
        if close:
            self.transport.close()

    def data_received(self, chunk):
        self.buffer += chunk
        while not self.closing:
            if self.in_data:
                # The message ends at CRLF "." CRLF (RFC 5321 §4.1.1.4); DATA's own CRLF precedes it.
                end = self.buffer.find(b"\r\n.\r\n", max(0, self.scanned - 4))
                if end < 0:
                    self.scanned = len(self.buffer)
                    return
                del self.buffer[:end + 5]
                self.in_data = False
                self.scanned = 0
                self.reply(b"250 2.0.0 Ok: queued\r\n")
                continue
            end = self.buffer.find(b"\r\n")
            if end < 0:
                return
            line = bytes(self.buffer[:end])
            del self.buffer[:end + 2]
            self.command(line)

    def command(self, line):
        verb = line[:4].upper()
        if verb == b"EHLO":
            self.reply(b"250-paced-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 52428800\r\n")
        elif verb == b"HELO":
            self.reply(b"250 paced-sink\r\n")
        elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
            self.reply(b"250 2.0.0 Ok\r\n")
        elif verb == b"DATA":
            # The body may follow at once; a message starts after DATA's CRLF, so scanning
            # begins with a CRLF in hand for an empty message.
            self.buffer[0:0] = b"\r\n"
            self.in_data = True
            self.scanned = 0
            self.reply(b"354 End data with <CR><LF>.<CR><LF>\r\n")
        elif verb == b"QUIT":
            self.closing = True
            self.reply(b"221 2.0.0 Bye\r\n", close=True)
        else:
            self.reply(b"502 5.5.2 Error: command not recognized\r\n")


async def main(port, delay):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Session(delay), "127.0.0.1", port, backlog=256)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: paced_smtp_sink.py PORT DELAY_MS")
    try:
        asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]) / 1000))
    except KeyboardInterrupt:
        pass
