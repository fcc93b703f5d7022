"""interop_cli - the Python client as a tiny command for interop tests.

    interop_cli.py ENDPOINT set KEYHEX VALUEHEX [TTLMS]
    interop_cli.py ENDPOINT get KEYHEX          prints the value in hex
    interop_cli.py ENDPOINT ttl KEYHEX          prints the ms it has left (0: none)

Keys and values travel as hex so that any byte survives the command line.
The Node suite runs this; client/node/test/interop-cli.js is its twin.
"""

import sys

import kvstore


def main(argv):
    endpoint, command, key = argv[1], argv[2], bytes.fromhex(argv[3])
    with kvstore.Client(endpoint, timeout=10) as c:
        if command == "set":
            c.set(key, bytes.fromhex(argv[4]), ttl_ms=int(argv[5]) if len(argv) > 5 else None)
        elif command == "get":
            print(c.get(key).hex())
        elif command == "ttl":
            print(c.get_entry(key).ttl_ms)
        else:
            raise SystemExit("unknown command %r" % command)


if __name__ == "__main__":
    main(sys.argv)
