//! Every Bedrock error before a stream, as the real AWS SDK sees it: the typed variant and the
//! message, for InvokeModel and InvokeModelWithResponseStream.

mod common;

use aws_sdk_bedrockruntime::error::ProvideErrorMetadata;
use aws_sdk_bedrockruntime::operation::invoke_model::InvokeModelError as I;
use aws_sdk_bedrockruntime::operation::invoke_model_with_response_stream::InvokeModelWithResponseStreamError as S;
use bedrock_local::{BedrockError, ErrorKind, Outcome, Rule};
use common::{MODEL, body, client, scripted};

const KINDS: [ErrorKind; 10] = [
    ErrorKind::AccessDeniedException,
    ErrorKind::ResourceNotFoundException,
    ErrorKind::ModelTimeoutException,
    ErrorKind::ThrottlingException,
    ErrorKind::ServiceUnavailableException,
    ErrorKind::ModelNotReadyException,
    ErrorKind::ModelErrorException,
    ErrorKind::ValidationException,
    ErrorKind::InternalServerException,
    ErrorKind::ServiceQuotaExceededException,
];

fn invoke_kind(error: &I) -> Option<ErrorKind> {
    Some(match error {
        I::AccessDeniedException(_) => ErrorKind::AccessDeniedException,
        I::ResourceNotFoundException(_) => ErrorKind::ResourceNotFoundException,
        I::ModelTimeoutException(_) => ErrorKind::ModelTimeoutException,
        I::ThrottlingException(_) => ErrorKind::ThrottlingException,
        I::ServiceUnavailableException(_) => ErrorKind::ServiceUnavailableException,
        I::ModelNotReadyException(_) => ErrorKind::ModelNotReadyException,
        I::ModelErrorException(_) => ErrorKind::ModelErrorException,
        I::ValidationException(_) => ErrorKind::ValidationException,
        I::InternalServerException(_) => ErrorKind::InternalServerException,
        I::ServiceQuotaExceededException(_) => ErrorKind::ServiceQuotaExceededException,
        _ => return None,
    })
}

fn stream_kind(error: &S) -> Option<ErrorKind> {
    Some(match error {
        S::AccessDeniedException(_) => ErrorKind::AccessDeniedException,
        S::ResourceNotFoundException(_) => ErrorKind::ResourceNotFoundException,
        S::ModelTimeoutException(_) => ErrorKind::ModelTimeoutException,
        S::ThrottlingException(_) => ErrorKind::ThrottlingException,
        S::ServiceUnavailableException(_) => ErrorKind::ServiceUnavailableException,
        S::ModelNotReadyException(_) => ErrorKind::ModelNotReadyException,
        S::ModelErrorException(_) => ErrorKind::ModelErrorException,
        S::ValidationException(_) => ErrorKind::ValidationException,
        S::InternalServerException(_) => ErrorKind::InternalServerException,
        S::ServiceQuotaExceededException(_) => ErrorKind::ServiceQuotaExceededException,
        _ => return None,
    })
}

#[tokio::test]
async fn every_error_is_typed_for_both_operations() {
    let rules = KINDS
        .iter()
        .map(|kind| {
            let error = BedrockError::new(*kind, format!("scripted {kind}"));
            Rule::new(Outcome::Error(error)).prompt_contains(format!("[{kind}]"))
        })
        .collect();
    let server = scripted(rules).await;
    let client = client(&server).await;
    for kind in KINDS {
        let prompt = format!("[{kind}]");
        let error = client
            .invoke_model()
            .model_id(MODEL)
            .body(body(&prompt, 10))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(invoke_kind(&error), Some(kind), "{error:?}");
        assert_eq!(error.message(), Some(format!("scripted {kind}").as_str()));

        let error = client
            .invoke_model_with_response_stream()
            .model_id(MODEL)
            .body(body(&prompt, 10))
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(stream_kind(&error), Some(kind), "{error:?}");
        assert_eq!(error.message(), Some(format!("scripted {kind}").as_str()));
    }
}

#[tokio::test]
async fn default_messages_and_statuses() {
    let server = scripted(vec![
        Rule::new(Outcome::error(ErrorKind::ThrottlingException)).prompt_contains("throttle"),
        Rule::new(Outcome::error(ErrorKind::ModelNotReadyException)).prompt_contains("warming"),
        Rule::new(Outcome::error(ErrorKind::ModelStreamErrorException)).prompt_contains("broken"),
    ])
    .await;
    let addr = server.local_addr();
    let path = "/model/meta.llama3-2-3b-instruct-v1:0/invoke";
    for (prompt, status, kind, message) in [
        (
            "throttle",
            429,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        ),
        ("warming", 429, "ModelNotReadyException", ""),
        ("broken", 424, "ModelErrorException", ""),
    ] {
        let request = serde_json::json!({ "prompt": prompt }).to_string();
        let response = common::raw(addr, "POST", path, request.as_bytes()).await;
        assert_eq!(response.status, status, "{prompt}");
        assert_eq!(response.header("x-amzn-errortype"), Some(kind));
        assert_eq!(response.header("content-type"), Some("application/json"));
        let body = response.json();
        assert!(body["message"].as_str().unwrap().starts_with(message));
        assert!(response.header("x-amzn-requestid").is_some());
    }
}
