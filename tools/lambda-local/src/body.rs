//! Reading request bodies up to a limit, telling "too large" apart from a broken connection.

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

/// A body that could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// More than the limit.
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed mid-body.
    #[error("body could not be read: {0}")]
    Read(#[from] axum::Error),
}

/// Reads the whole body, refusing it as soon as it passes `limit` bytes.
pub(crate) async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut buffer = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buffer.len().saturating_add(chunk.len()) > limit {
            return Err(BodyError::TooLarge(limit));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}
