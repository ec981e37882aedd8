#!/usr/bin/env python3
"""moto's S3 server with injected faults, for envcrypt's S3 tests (tests/s3.rs).

Usage: moto_faults.py -H HOST -p PORT      (the arguments of moto_server)

Runs moto's own server in this process after patching its S3 backend:

    MOTO_FAULT_UPLOAD_PART   comma-separated part numbers (e.g. "2") whose UploadPart
                             fails, on every attempt, with the status below and an S3 error
                             body (Code InternalError, Message "injected fault ...").
    MOTO_FAULT_STATUS        that HTTP status (default 500).

Every injected fault prints one line "moto_faults: injected STATUS UploadPart part N" to
stderr, so a test can count the attempts. Everything else is moto, unchanged.

Exits 3 with one line on stderr when moto cannot be imported.
"""

import os
import sys

HINT = (
    "install it with: python3 -m venv target/esdk-venv && "
    "target/esdk-venv/bin/pip install 'moto[server]>=5,<6'"
)


def main(argv):
    try:
        import moto.s3.models as s3_models
        from moto.server import main as moto_main
        from werkzeug.exceptions import HTTPException
        from werkzeug.wrappers import Response
    except ImportError as e:
        sys.stderr.write("moto_faults: cannot import moto's server (%s) into %s; %s\n" % (e, sys.executable, HINT))
        sys.exit(3)

    parts = {
        int(p)
        for p in os.environ.get("MOTO_FAULT_UPLOAD_PART", "").split(",")
        if p.strip()
    }
    status = int(os.environ.get("MOTO_FAULT_STATUS", "500"))

    class InjectedFault(HTTPException):
        """Answered by the WSGI app as is: moto's S3 handlers only catch their own errors."""

        code = status

    original = s3_models.S3Backend.upload_part

    def upload_part(self, bucket_name, multipart_id, part_id, value):
        if int(part_id) in parts:
            sys.stderr.write("moto_faults: injected %d UploadPart part %d\n" % (status, int(part_id)))
            sys.stderr.flush()
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                "<Error><Code>InternalError</Code>"
                "<Message>injected fault on part %d</Message>"
                "<RequestId>moto-faults</RequestId></Error>" % int(part_id)
            )
            raise InjectedFault(
                response=Response(body, status=status, content_type="application/xml")
            )
        return original(self, bucket_name, multipart_id, part_id, value)

    s3_models.S3Backend.upload_part = upload_part
    sys.stderr.write(
        "moto_faults: UploadPart of parts %s answers %d\n" % (sorted(parts) or "none", status)
    )
    sys.stderr.flush()
    moto_main(argv[1:])


if __name__ == "__main__":
    main(sys.argv)
