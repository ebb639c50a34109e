//! Function output and Lambda's own log lines, written to the server's stderr with the
//! function's name as prefix.

use std::io::Write;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// Writes `prefix`, `line` and a newline to stderr in one piece.
pub(crate) fn line(prefix: &str, line: &[u8]) {
    let mut stderr = std::io::stderr().lock();
    // Nothing sensible to do when stderr is gone.
    let _ = stderr
        .write_all(prefix.as_bytes())
        .and_then(|()| stderr.write_all(line))
        .and_then(|()| stderr.write_all(b"\n"));
}

/// Copies `reader` line by line to stderr until it ends.
pub(crate) fn forward(
    reader: impl AsyncRead + Unpin + Send + 'static,
    prefix: String,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let trimmed = buffer.strip_suffix(b"\n").unwrap_or(&buffer);
                    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
                    line(&prefix, trimmed);
                }
            }
        }
    })
}
