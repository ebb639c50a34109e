"""moto in server mode (same arguments as ``moto_server``), with S3 event notifications
shaped as S3 sends them.

moto 5.2.5's notification records (``moto/s3/notifications.py``) lack ``userIdentity``,
``requestParameters`` and ``responseElements`` (which S3 always sends, and which
``aws_lambda_events``' ``S3Event`` requires) and the object's ``sequencer`` and ``versionId``.
This adds them before moto sends a record to SQS, Lambda or SNS: the sequencer grows with
every event (fixed-width hexadecimal, as S3 orders the events of a key), the version id is
the object's when the bucket is versioned.
"""

from __future__ import annotations

import itertools
import sys
import threading

from moto.s3 import notifications
from moto.server import main

_original = notifications._get_s3_event
_sequencer = itertools.count(1)
_lock = threading.Lock()


def _s3_event(event_name, bucket, key, notification_id):
    event = _original(event_name, bucket, key, notification_id)
    with _lock:
        sequencer = next(_sequencer)
    for record in event["Records"]:
        record.setdefault("userIdentity", {"principalId": "AWS:LOCAL"})
        record.setdefault("requestParameters", {"sourceIPAddress": "127.0.0.1"})
        record.setdefault("responseElements", {"x-amz-request-id": f"{sequencer:016X}",
                                               "x-amz-id-2": "local"})
        record["s3"]["bucket"].setdefault("ownerIdentity", {"principalId": "LOCAL"})
        obj = record["s3"]["object"]
        obj.setdefault("sequencer", f"{sequencer:018X}")
        if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None) not in (None, "null"):
            obj.setdefault("versionId", key.version_id)
    return event


notifications._get_s3_event = _s3_event

if __name__ == "__main__":
    sys.exit(main())
