"""End-to-end tests of direct uploads over the local stack: `POST /uploads` answers with a
presigned S3 `PUT` URL (signed by summarize-document's SDK client against the local S3);
the PDF goes straight to S3 with the headers the answer names; the S3 notification starts the
summary; `GET /documents/{key}` follows the document from `pending` to `ready` with the
summary record. `Uploads` plays the notification itself (after it has seen `pending`);
`UploadsAsDeployed` lets the local S3 raise it through the upload queue, as deployed.

moto does not check signatures, so S3 refusing a larger body than declared is tested against
the in-process S3 server that does (functions/summarize-document/tests/direct_uploads.rs).

Run by ``make test`` (scripts/test.sh) after the binaries are built.
"""

from __future__ import annotations

import sys
import unittest
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import LocalStack, StackOptions  # noqa: E402
from storm import pdf  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
REPORT = ("The quarterly report covers revenue, costs and hiring plans.\n"
          "Revenue grew in every region while costs stayed flat.\n") * 5


def put(url: str, headers: dict, body: bytes) -> int:
    """A plain HTTP PUT, as a browser or curl would send it."""
    req = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


class Uploads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # S3's notification is delivered by the test (after it checked `pending`): no queue.
        cls.stack = LocalStack(StackOptions(scripted=RULES, context_window=2048, upload_queue=False)).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def get(self, path: str) -> tuple[int, dict]:
        status, _, body = self.stack.request("GET", path)
        return status, body

    def test_a_presigned_pdf_upload_is_summarized_and_its_status_shows_the_summary(self):
        document = pdf(REPORT)
        status, _, upload = self.stack.request("POST", "/uploads", {
            "filename": "q3 report.pdf", "content_type": "application/pdf", "size": len(document)})
        self.assertEqual(status, 200, upload)
        key = upload["key"]
        self.assertRegex(key, r"^incoming/[0-9a-f-]{36}/q3 report\.pdf$")
        self.assertEqual(upload["headers"], {"content-type": "application/pdf",
                                             "content-length": str(len(document)), "if-none-match": "*"})
        self.assertIn("X-Amz-Signature=", upload["url"])

        self.assertEqual(self.get(upload["status_url"])[0], 404)
        self.assertEqual(put(upload["url"], upload["headers"], document), 200)
        stored = self.stack.s3().head_object(Bucket="text-processing-documents", Key=key)
        self.assertEqual(stored["ContentType"], "application/pdf")
        self.assertEqual(stored["ContentLength"], len(document))
        status, body = self.get(upload["status_url"])
        self.assertEqual((status, body["status"]), (200, "pending"), body)

        # What S3 does on its own: the notification to summarize-document.
        self.stack.notify_for_summary(key)
        self.stack.wait_object([upload["record_key"], upload["failure_key"]], timeout=300)
        status, body = self.get(upload["status_url"])
        self.assertEqual((status, body["status"]), (200, "ready"), body)
        self.assertEqual(body["record_key"], upload["record_key"])
        self.assertEqual(body["record"], self.stack.get_json(upload["record_key"]))
        self.assertEqual(body["record"]["format"], "pdf")
        self.assertTrue(body["record"]["summary"])
        # The key with its slashes encoded names the same document.
        encoded = "/documents/" + urllib.request.quote(key, safe="")
        self.assertEqual(self.get(encoded), (status, body))

    def test_a_workflow_upload_lands_under_workflow(self):
        status, _, upload = self.stack.request("POST", "/uploads", {
            "filename": "plan.md", "content_type": "text/markdown", "size": 6, "workflow": True})
        self.assertEqual(status, 200, upload)
        self.assertTrue(upload["key"].startswith("workflow/"), upload)
        self.assertTrue(upload["record_key"].startswith("results/workflow/"), upload)
        self.assertEqual(put(upload["url"], upload["headers"], b"# Plan"), 200)
        status, body = self.get(upload["status_url"])
        self.assertEqual((status, body["status"]), (200, "pending"), body)

    def test_bad_input_gets_a_4xx_with_the_error_shape(self):
        cases = [
            ("POST", "/uploads", {"filename": "../x.pdf", "content_type": "application/pdf", "size": 9}, 400),
            ("POST", "/uploads", {"filename": "x.exe", "content_type": "application/x-msdownload", "size": 9}, 422),
            ("POST", "/uploads", {"filename": "x.pdf", "content_type": "application/pdf", "size": 0}, 400),
            ("POST", "/uploads", {"filename": "x.pdf", "content_type": "application/pdf", "size": 10**12}, 413),
            ("POST", "/uploads", {"filename": "x.pdf"}, 400),
            ("GET", "/documents/summaries/incoming/x.pdf.json", None, 400),
            ("GET", "/documents/incoming/none/x.pdf", None, 404),
        ]
        for method, path, body, expected in cases:
            status, _, answer = self.stack.request(method, path, body)
            self.assertEqual(status, expected, (path, body, answer))
            self.assertEqual(set(answer), {"error"}, answer)
            self.assertEqual(set(answer["error"]), {"type", "message"}, answer)
            self.assertNotIn("arn:", answer["error"]["message"])
            self.assertNotIn("text-processing-documents", answer["error"]["message"])
        # Nothing was stored by the refused requests.
        self.assertEqual(self.stack.keys("incoming/none/"), [])


class UploadsAsDeployed(unittest.TestCase):
    """The deployed path: the local S3 itself notifies the upload queue on the presigned PUT,
    and the queue's event source mapping runs summarize-document."""

    @classmethod
    def setUpClass(cls):
        cls.stack = LocalStack(StackOptions(scripted=RULES, context_window=2048, upload_queue=True)).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_a_presigned_upload_is_summarized_by_the_notification_s3_raises(self):
        document = pdf(REPORT)
        status, _, upload = self.stack.request("POST", "/uploads", {
            "filename": "annual report.pdf", "content_type": "application/pdf", "size": len(document)})
        self.assertEqual(status, 200, upload)
        self.assertEqual(put(upload["url"], upload["headers"], document), 200)
        self.stack.wait_object([upload["record_key"], upload["failure_key"]], timeout=300)
        status, _, body = self.stack.request("GET", upload["status_url"])
        self.assertEqual((status, body["status"]), (200, "ready"), body)
        self.assertEqual(body["record"]["format"], "pdf")
        self.assertEqual(body["record"]["source"]["etag"],
                         self.stack.s3().head_object(Bucket="text-processing-documents",
                                                     Key=upload["key"])["ETag"].strip('"'))
        # A replay of the same URL is refused (If-None-Match: * is signed): no second version.
        self.assertEqual(put(upload["url"], upload["headers"], document), 412)


if __name__ == "__main__":
    unittest.main()
