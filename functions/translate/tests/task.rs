//! Step Functions task input (text or an S3 document) and the sample events.

mod common;

use bedrock_local::{ErrorKind, Outcome, Rule, Script};
use common::{Env, WINDOW};
use serde_json::json;
use testkit::LocalS3;
use testkit::events::http_parts;
use translate::Config;

const BUCKET: &str = "text-processing-documents-123456789012";
const GERMAN: &str = "Sehr geehrte Damen und Herren,\n\nvielen Dank für Ihre Bestellung. \
                      Die Lieferung erfolgt innerhalb von drei Werktagen.\n";

async fn env_with_s3(script: Script, config: Config) -> (Env, LocalS3) {
    let s3 = LocalS3::start(&[BUCKET]).await;
    let env = Env::with(script, WINDOW, config, Some(s3.client())).await;
    (env, s3)
}

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[tokio::test]
async fn translates_text_input() {
    let env = Env::start(Script::default(), WINDOW).await;
    let out = env
        .task(json!({"text": GERMAN, "target_language": "en", "glossary": [{"term": "Damen"}]}))
        .await
        .unwrap();
    assert_eq!(out["source_language"], "de");
    assert_eq!(out["detected"], true);
    assert_eq!(common::unecho(out["translation"].as_str().unwrap()), GERMAN);
    assert!(out.get("document").is_none());
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn translates_s3_documents_in_utf8_with_bom_and_utf16() {
    let (env, s3) = env_with_s3(Script::default(), Config::default()).await;
    let mut with_bom = vec![0xEF, 0xBB, 0xBF];
    with_bom.extend_from_slice(GERMAN.as_bytes());
    s3.put(BUCKET, "in/utf8 bom.txt", with_bom).await;
    s3.put(BUCKET, "in/utf16.txt", utf16le_with_bom(GERMAN))
        .await;
    for key in ["in/utf8 bom.txt", "in/utf16.txt"] {
        let out = env
            .task(json!({"bucket": BUCKET, "key": key, "target_language": "en"}))
            .await
            .unwrap();
        let translation = out["translation"].as_str().unwrap();
        assert!(
            translation.starts_with("Echo: Sehr geehrte"),
            "{translation:?}"
        );
        assert!(!translation.contains('\u{feff}'));
        assert_eq!(common::unecho(translation), GERMAN);
        assert_eq!(out["source_language"], "de");
        assert_eq!(out["document"], json!({"bucket": BUCKET, "key": key}));
    }
    assert_eq!(env.calls(), 2);
}

#[tokio::test]
async fn document_errors_have_stable_types_and_no_model_call() {
    let config = Config {
        max_object_bytes: 2000,
        max_text_bytes: 1000,
        ..Config::default()
    };
    let (env, s3) = env_with_s3(Script::default(), config).await;
    s3.put(
        BUCKET,
        "in/image.png",
        vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0],
    )
    .await;
    s3.put(BUCKET, "in/big.txt", "Wort ".repeat(500)).await;
    s3.put(
        BUCKET,
        "in/larger-once-decoded.txt",
        utf16le_with_bom(&"ก".repeat(400)),
    )
    .await;
    s3.put(BUCKET, "in/empty.txt", "  \n").await;
    let cases = [
        (
            json!({"bucket": BUCKET, "key": "in/missing.txt"}),
            "DocumentNotFound",
        ),
        (
            json!({"bucket": "no-such-bucket", "key": "a.txt"}),
            "DocumentNotFound",
        ),
        (
            json!({"bucket": BUCKET, "key": "in/image.png"}),
            "UnsupportedDocument",
        ),
        (
            json!({"bucket": BUCKET, "key": "in/empty.txt"}),
            "UnsupportedDocument",
        ),
        (
            json!({"bucket": BUCKET, "key": "in/big.txt"}),
            "InputTooLarge",
        ),
        (
            json!({"bucket": BUCKET, "key": "in/larger-once-decoded.txt"}),
            "InputTooLarge",
        ),
    ];
    for (mut document, kind) in cases {
        document["target_language"] = json!("en");
        let err = env.task(document.clone()).await.unwrap_err();
        assert_eq!(err.error_type(), kind, "{document}: {err}");
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, kind);
    }
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn bad_task_input_is_invalid_input() {
    let env = Env::start(Script::default(), WINDOW).await;
    for input in [
        json!({"target_language": "en"}),
        json!({"text": "Hallo", "bucket": BUCKET, "key": "a.txt", "target_language": "en"}),
        json!({"text": "Hallo"}),
        json!({"text": "Hallo", "target_language": "ja"}),
        json!({"bucket": BUCKET, "target_language": "en"}),
        json!({"key": "a.txt", "target_language": "en"}),
        json!({"document": {"bucket": BUCKET, "key": "a.txt"}, "target_language": "en"}),
        json!({"text": "", "target_language": "en"}),
        json!("just a string"),
    ] {
        let err = env.task(input.clone()).await.unwrap_err();
        assert_eq!(err.error_type(), "InvalidInput", "{input}: {err}");
    }
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn s3_notifications_are_not_handled() {
    let env = Env::start(Script::default(), WINDOW).await;
    let event = json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2025-03-12T19:03:58.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
               "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::b"},
               "object": {"key": "in/a.txt", "size": 5, "eTag": "e", "sequencer": "1"}}
    }]});
    let err = env.task(event).await.unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
    assert_eq!(env.calls(), 0);
}

#[tokio::test]
async fn persistent_throttling_fails_the_task_as_model_throttled() {
    let script = Script::new(vec![Rule::new(Outcome::error(
        ErrorKind::ThrottlingException,
    ))]);
    let env = Env::start(script, WINDOW).await;
    let err = env
        .task(json!({"text": GERMAN, "source_language": "de", "target_language": "en"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "ModelThrottled");
    assert!(err.is_retryable());
    assert_eq!(
        lambda_runtime::Diagnostic::from(err).error_type,
        "ModelThrottled"
    );
    assert_eq!(env.calls(), 3);
}

#[tokio::test]
async fn sample_http_event_is_answered() {
    let env = Env::start(Script::default(), WINDOW).await;
    let out = lambda_kit::handle(
        &env.app,
        testkit::events::sample("translate-http.json"),
        common::deadline(),
    )
    .await
    .unwrap();
    let (status, body) = http_parts(&out);
    assert_eq!(status, 200, "{body}");
    assert!(body["translation"].as_str().unwrap().starts_with("Echo: "));
    assert_eq!(body["target_language"], "de");
    let translation = body["translation"].as_str().unwrap();
    assert!(
        translation.contains("```bash\nacme invoices export --format pdf\n```\n"),
        "{translation}"
    );
    // The echo keeps "invoice history" instead of the glossary's "Rechnungsverlauf";
    // "Acme Cloud" is kept as required.
    assert_eq!(
        body["glossary_violations"],
        json!([{"term": "invoice history", "expected": "Rechnungsverlauf", "chunk": 0}])
    );
    assert!(env.calls() >= 1);
}

#[tokio::test]
async fn sample_task_event_is_answered() {
    let (env, s3) = env_with_s3(Script::default(), Config::default()).await;
    let input = testkit::events::sample("translate-task.json");
    let key = input["key"].as_str().unwrap();
    s3.put(BUCKET, key, GERMAN).await;
    assert_eq!(input["bucket"], BUCKET);
    let out = env.task(input.clone()).await.unwrap();
    assert_eq!(out["target_language"], input["target_language"]);
    assert_eq!(out["source_language"], "de");
    assert!(out["translation"].as_str().unwrap().starts_with("Echo: "));
    assert_eq!(env.calls(), 1);
}

#[tokio::test]
async fn output_key_writes_the_translation_to_s3_and_leaves_it_out_of_the_result() {
    let (env, s3) = env_with_s3(Script::default(), Config::default()).await;
    s3.put(BUCKET, "work/exec/source.txt", GERMAN).await;
    let out = env
        .task(
            json!({"bucket": BUCKET, "key": "work/exec/source.txt", "target_language": "en",
                     "source_language": "de", "output_key": "work/exec/translated.txt"}),
        )
        .await
        .unwrap();
    assert!(out.get("translation").is_none(), "{out}");
    assert_eq!(out["output_key"], "work/exec/translated.txt");
    let written = s3.get(BUCKET, "work/exec/translated.txt").await.unwrap();
    assert_eq!(
        common::unecho(std::str::from_utf8(&written).unwrap()),
        GERMAN
    );
    let err = env
        .task(json!({"text": GERMAN, "target_language": "en", "output_key": "x"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "InvalidInput");
}
