//! `POST /uploads` and `GET /documents/{key}` through the Lambda boundary, with the real S3
//! client presigning against the in-process S3 server, which checks SigV4 signatures the
//! way S3 does: the upload URL is used with a plain HTTP client.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use bedrock_local::{Outcome, Rule};
use common::{BUCKET, Stack, deadline};
use lambda_kit::handle;
use serde_json::{Value, json};
use testkit::events::{http_parts, post_json, s3_created, sample};

const TEXT: &str = "The northern warehouse shipped more parcels this quarter than ever before. \
    On-time delivery stayed close to target despite two storms.";

async fn stack() -> Stack {
    Stack::builder(vec![Rule::new(Outcome::text(
        "Parcels up, deliveries on time.",
    ))])
    .config(|c| c.documents_bucket = Some(BUCKET.into()))
    .start()
    .await
}

/// `POST /uploads` with `body`: status and JSON body.
async fn post_upload(s: &Stack, body: &Value) -> (u16, Value) {
    let out = handle(&s.app, post_json("/uploads", body), deadline())
        .await
        .unwrap();
    http_parts(&out)
}

/// `GET /documents/{key+}` as API Gateway sends it: the raw path encoded, the (greedy)
/// path parameter decoded.
async fn get_document(s: &Stack, key: &str) -> (u16, Value) {
    let path = summarize_document::direct_uploads::status_url(key);
    let mut event = testkit::events::http("GET", &path, None, "");
    event["routeKey"] = json!("GET /documents/{key+}");
    event["requestContext"]["routeKey"] = json!("GET /documents/{key+}");
    event["pathParameters"] = json!({ "key": key });
    event.as_object_mut().unwrap().remove("body");
    http_parts(&handle(&s.app, event, deadline()).await.unwrap())
}

/// A plain HTTP/1.1 `PUT` of `body` to `url` with `headers`: the status and the response.
async fn put(url: &str, headers: Vec<(String, String)>, body: Vec<u8>) -> (u16, String) {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let rest = url.strip_prefix("http://").expect("an http URL");
        let (authority, target) = rest.split_at(rest.find('/').expect("a path"));
        let mut stream = TcpStream::connect(authority).expect("connect");
        let mut head =
            format!("PUT {target} HTTP/1.1\r\nhost: {authority}\r\nconnection: close\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).expect("write head");
        stream.write_all(&body).expect("write body");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        (status, response)
    })
    .await
    .unwrap()
}

/// The headers an upload answer tells the client to send, with `change` applied.
fn headers(upload: &Value, change: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = upload["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    for (name, value) in change {
        headers.retain(|(k, _)| k != name);
        headers.push(((*name).to_owned(), (*value).to_owned()));
    }
    headers
}

fn request(filename: &str, content_type: &str, size: usize) -> Value {
    json!({"filename": filename, "content_type": content_type, "size": size})
}

#[tokio::test]
async fn an_upload_url_takes_the_declared_document_and_the_status_follows_it() {
    let s = stack().await;
    let (status, upload) =
        post_upload(&s, &request("q3 report.txt", "text/plain", TEXT.len())).await;
    assert_eq!(status, 200, "{upload}");
    let key = upload["key"].as_str().unwrap().to_owned();
    assert!(
        key.starts_with("incoming/") && key.ends_with("/q3 report.txt"),
        "{key}"
    );
    assert_eq!(upload["method"], "PUT");
    assert_eq!(upload["record_key"], format!("summaries/{key}.json"));
    assert_eq!(upload["failure_key"], format!("failed/{key}.json"));
    assert_eq!(
        upload["status_url"],
        summarize_document::direct_uploads::status_url(&key)
    );
    assert!(
        upload["status_url"]
            .as_str()
            .unwrap()
            .ends_with("/q3%20report.txt")
    );
    assert!(
        upload["expires_at"].as_str().unwrap().ends_with('Z'),
        "{upload}"
    );
    // Both headers are signed, so S3 holds the client to them.
    let url = upload["url"].as_str().unwrap();
    let signed = url
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("X-Amz-SignedHeaders="))
        .unwrap();
    assert!(
        signed.contains("content-length") && signed.contains("content-type"),
        "{signed}"
    );
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    assert_eq!(upload["headers"]["content-length"], TEXT.len().to_string());

    // Nothing is known before the upload.
    let (status, body) = get_document(&s, &key).await;
    assert_eq!(
        (status, &body["error"]["type"]),
        (404, &json!("DocumentNotFound"))
    );

    let (status, response) = put(url, headers(&upload, &[]), TEXT.into()).await;
    assert_eq!(status, 200, "{response}");
    let head =
        s.s3.client()
            .head_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(s.s3.get(BUCKET, &key).await.unwrap(), TEXT.as_bytes());

    let (status, body) = get_document(&s, &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "pending");
    assert_eq!(body["record_key"], format!("summaries/{key}.json"));

    // S3's notification, as it names the key (URL-encoded).
    let etag = s.s3.etag(BUCKET, &key).await;
    let event = s3_created(BUCKET, &[(&key.replace(' ', "+"), &etag)]);
    let out = handle(&s.app, event, deadline()).await.unwrap();
    assert_eq!(out["records"][0]["status"], "summarized", "{out}");

    let (status, body) = get_document(&s, &key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["record"]["summary"], "Parcels up, deliveries on time.");
    assert_eq!(body["record"]["source"]["key"], key.as_str());
    assert_eq!(s.emulator.calls(), 1);
}

#[tokio::test]
async fn s3_refuses_a_body_larger_than_declared_another_content_type_or_a_replay() {
    let s = stack().await;
    let (_, upload) = post_upload(&s, &request("a.pdf", "application/pdf", 10)).await;
    let url = upload["url"].as_str().unwrap();
    let key = upload["key"].as_str().unwrap();
    let eleven = vec![b'x'; 11];
    let cases = [
        (headers(&upload, &[("content-length", "11")]), eleven),
        (
            headers(&upload, &[("content-type", "text/html")]),
            vec![b'x'; 10],
        ),
    ];
    for (headers, body) in cases {
        let (status, response) = put(url, headers, body).await;
        assert_eq!(status, 403, "{response}");
        assert!(response.contains("SignatureDoesNotMatch"), "{response}");
    }
    assert_eq!(s.s3.get(BUCKET, key).await, None, "nothing was stored");
    // The declared document goes in once; the same URL again (a replay) is refused.
    let (status, response) = put(url, headers(&upload, &[]), vec![b'x'; 10]).await;
    assert_eq!(status, 200, "{response}");
    let (status, response) = put(url, headers(&upload, &[]), vec![b'y'; 10]).await;
    assert_eq!(status, 412, "{response}");
    assert_eq!(s.s3.get(BUCKET, key).await, Some(vec![b'x'; 10]));
}

#[tokio::test]
async fn bad_upload_requests_get_a_typed_4xx() {
    let s = stack().await;
    let too_big = 1024 * 1024 + 1;
    let cases = [
        (
            request("../summaries/x.json", "text/plain", 10),
            400,
            "InvalidInput",
        ),
        (request("a/b.txt", "text/plain", 10), 400, "InvalidInput"),
        (request(".hidden", "text/plain", 10), 400, "InvalidInput"),
        (
            request(&"x".repeat(256), "text/plain", 10),
            400,
            "InvalidInput",
        ),
        (
            request("a.png", "image/png", 10),
            422,
            "UnsupportedDocument",
        ),
        (request("a.txt", "text/plain", 0), 400, "InvalidInput"),
        (
            request("a.txt", "text/plain", too_big),
            413,
            "InputTooLarge",
        ),
        (
            json!({"filename": "a.txt", "content_type": "text/plain"}),
            400,
            "InvalidInput",
        ),
        (
            json!({"filename": "a.txt", "content_type": "text/plain", "size": -1}),
            400,
            "InvalidInput",
        ),
        (
            json!({"filename": "a.txt", "content_type": "text/plain", "size": 1, "bucket": "x"}),
            400,
            "InvalidInput",
        ),
    ];
    for (body, status, error_type) in cases {
        let (got, answer) = post_upload(&s, &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["type"], error_type, "{body}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    assert!(s.s3.keys(BUCKET, "").await.is_empty());
}

#[tokio::test]
async fn workflow_uploads_and_the_status_of_each_kind_of_record() {
    let s = stack().await;
    let (status, upload) = post_upload(
        &s,
        &json!({"filename": "plan.md", "content_type": "text/markdown", "size": 6, "workflow": true}),
    )
    .await;
    assert_eq!(status, 200, "{upload}");
    let key = upload["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("workflow/"), "{key}");
    assert_eq!(upload["record_key"], format!("results/{key}.json"));
    let (status, _) = put(
        upload["url"].as_str().unwrap(),
        headers(&upload, &[]),
        b"# Plan".to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let etag = s.s3.etag(BUCKET, &key).await;

    // The workflow's result, for this version: ready.
    let result = json!({"source": {"key": key, "etag": etag}, "summary": "S"});
    s.s3.put(BUCKET, &format!("results/{key}.json"), result.to_string())
        .await;
    let (status, body) = get_document(&s, &key).await;
    assert_eq!((status, &body["status"]), (200, &json!("ready")), "{body}");
    assert_eq!(body["record"]["summary"], "S");

    // A failure record of this version: failed.
    let failed = "incoming/u/broken.pdf";
    let etag = s.s3.put_for_etag(BUCKET, failed, "not a pdf").await;
    let record = json!({"source": {"key": failed, "etag": etag},
                        "error": {"type": "UnsupportedDocument", "message": "corrupt pdf"}});
    s.s3.put(BUCKET, &format!("failed/{failed}.json"), record.to_string())
        .await;
    let (status, body) = get_document(&s, failed).await;
    assert_eq!((status, &body["status"]), (200, &json!("failed")), "{body}");
    assert_eq!(body["record"]["error"]["type"], "UnsupportedDocument");
    assert_eq!(body["record"]["error"]["message"], "corrupt pdf");
    assert_eq!(body["record_key"], format!("failed/{failed}.json"));

    // A failure that is not the document's own shows its type, not its internals.
    let internal = "workflow/u/stuck.txt";
    let etag = s.s3.put_for_etag(BUCKET, internal, "text").await;
    let record = json!({"source": {"bucket": "docs-123456789012", "key": internal, "etag": etag},
                        "error": {"type": "States.Timeout", "message": "arn:aws:states:... timed out"},
                        "execution": "arn:aws:states:us-east-1:123456789012:execution:wf:x"});
    s.s3.put(
        BUCKET,
        &format!("failed/{internal}.json"),
        record.to_string(),
    )
    .await;
    let (_, body) = get_document(&s, internal).await;
    assert_eq!(body["record"]["error"]["type"], "States.Timeout", "{body}");
    assert!(!body.to_string().contains("arn:"), "{body}");
    assert!(!body.to_string().contains("123456789012"), "{body}");

    // A new version uploaded over it: pending until its own record is written.
    s.s3.put(BUCKET, failed, "another version").await;
    let (_, body) = get_document(&s, failed).await;
    assert_eq!(body["status"], "pending", "{body}");

    // A record whose document is gone still answers.
    s.s3.client()
        .delete_object()
        .bucket(BUCKET)
        .key(failed)
        .send()
        .await
        .unwrap();
    let (_, body) = get_document(&s, failed).await;
    assert_eq!(body["status"], "failed", "{body}");

    for (key, status, error_type) in [
        ("incoming/nothing/here.pdf", 404, "DocumentNotFound"),
        ("summaries/incoming/u/broken.pdf.json", 400, "InvalidInput"),
        ("claims/x.json", 400, "InvalidInput"),
    ] {
        let (got, body) = get_document(&s, key).await;
        assert_eq!(
            (got, &body["error"]["type"]),
            (status, &json!(error_type)),
            "{key}"
        );
    }
    assert_eq!(s.emulator.calls(), 0);
}

#[tokio::test]
async fn sample_events_for_uploads_and_documents_are_valid() {
    let s = stack().await;
    let out = handle(
        &s.app,
        sample("summarize-document-uploads-http.json"),
        deadline(),
    )
    .await
    .unwrap();
    let (status, upload) = http_parts(&out);
    assert_eq!(status, 200, "{upload}");
    assert!(upload["url"].as_str().unwrap().contains("X-Amz-Signature="));
    s.s3.put(BUCKET, "incoming/quarterly report.pdf", "%PDF-")
        .await;
    let out = handle(
        &s.app,
        sample("summarize-document-documents-http.json"),
        deadline(),
    )
    .await
    .unwrap();
    let (status, body) = http_parts(&out);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["key"], "incoming/quarterly report.pdf");
    assert_eq!(body["status"], "pending");
}
