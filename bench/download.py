"""Download one URL as a client would and report the time: a separate process from the server.

    python -m bench.download URL OUTPUT [--header "K: V"]...

Prints one JSON object: status, seconds until the last byte, bytes and lines written.
"""

import argparse
import http.client
import json
import sys
import time
from urllib.parse import urlsplit

BLOCK = 1 << 20


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("output")
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args(argv)
    parts = urlsplit(args.url)
    headers = dict(h.split(": ", 1) for h in args.header)
    size = lines = 0
    started = time.perf_counter()
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
    response = conn.getresponse()
    with open(args.output, "wb") as sink:
        while block := response.read(BLOCK):
            sink.write(block)
            size += len(block)
            lines += block.count(b"\n")
    seconds = time.perf_counter() - started
    conn.close()
    json.dump({"status": response.status, "seconds": round(seconds, 3), "bytes": size, "lines": lines}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
