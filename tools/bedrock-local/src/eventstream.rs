//! AWS event-stream frames for InvokeModelWithResponseStream: `chunk` events and exceptions.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use base64::Engine as _;
use bytes::Bytes;

use crate::errors::BedrockError;

/// The response content type of an event stream.
pub(crate) const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// A frame could not be encoded (only possible for absurdly large payloads).
#[derive(Debug, thiserror::Error)]
#[error("could not encode an event-stream frame: {0}")]
pub(crate) struct FrameError(#[from] aws_smithy_eventstream::error::Error);

fn header(name: &'static str, value: &'static str) -> Header {
    Header::new(name, HeaderValue::String(value.into()))
}

fn encode(message: &Message) -> Result<Bytes, FrameError> {
    let mut buffer = Vec::with_capacity(message.payload().len() + 128);
    write_message_to(message, &mut buffer)?;
    Ok(Bytes::from(buffer))
}

/// A `chunk` event whose payload is `{"bytes": base64(model_json)}`.
pub(crate) fn chunk_frame(model_json: &[u8]) -> Result<Bytes, FrameError> {
    let payload = serde_json::json!({
        "bytes": base64::engine::general_purpose::STANDARD.encode(model_json)
    });
    let message = Message::new_from_parts(
        vec![
            header(":message-type", "event"),
            header(":event-type", "chunk"),
            header(":content-type", "application/json"),
        ],
        payload.to_string().into_bytes(),
    );
    encode(&message)
}

/// An exception frame, e.g. `:exception-type` = `throttlingException`, payload `{"message": ...}`.
pub(crate) fn exception_frame(error: &BedrockError) -> Result<Bytes, FrameError> {
    let message = Message::new_from_parts(
        vec![
            header(":message-type", "exception"),
            header(":exception-type", error.kind.stream_name()),
            header(":content-type", "application/json"),
        ],
        error.body(),
    );
    encode(&message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::ErrorKind;
    use aws_smithy_eventstream::frame::read_message_from;

    fn header_value<'a>(message: &'a Message, name: &str) -> &'a str {
        message
            .headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok())
            .map(|s| s.as_str())
            .unwrap_or_default()
    }

    #[test]
    fn chunk_round_trips() {
        let frame = chunk_frame(br#"{"generation":"hi"}"#).unwrap();
        let message = read_message_from(frame).unwrap();
        assert_eq!(header_value(&message, ":message-type"), "event");
        assert_eq!(header_value(&message, ":event-type"), "chunk");
        let payload: serde_json::Value = serde_json::from_slice(message.payload()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(payload["bytes"].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes, br#"{"generation":"hi"}"#);
    }

    #[test]
    fn exception_round_trips() {
        let error = BedrockError::new(ErrorKind::ThrottlingException, "slow");
        let message = read_message_from(exception_frame(&error).unwrap()).unwrap();
        assert_eq!(header_value(&message, ":message-type"), "exception");
        assert_eq!(
            header_value(&message, ":exception-type"),
            "throttlingException"
        );
        assert_eq!(&message.payload()[..], br#"{"message":"slow"}"#);
    }
}
