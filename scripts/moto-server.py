#!/usr/bin/env python3
"""moto_server, with each request handled alone: DynamoDB makes every single-item write atomic
(an ADD, a conditional update), and moto's threaded server does not, so concurrent increments
could be lost under load. Connections are still served by threads; only the handling of one
request at a time is serialised.

    .venv/bin/python scripts/moto-server.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    # As moto_server does: some services build their URLs from it.
    os.environ.setdefault("MOTO_PORT", str(args.port))

    app = DomainDispatcherApplication(create_backend_app)
    one_at_a_time = threading.Lock()

    def serialised(environ, start_response):
        with one_at_a_time:
            # The whole answer is produced inside the lock.
            return list(app(environ, start_response))

    run_simple(args.host, args.port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
