//! Function output: forwarded to the server's stderr with the function's name, and captured
//! per invocation for `LogType: Tail` (Lambda returns the last 4 KB).

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::task::JoinHandle;

/// How much of an invocation's log `LogType: Tail` returns.
pub(crate) const TAIL_BYTES: usize = 4096;
/// Captured bytes kept per invocation before the oldest are dropped.
const CAPTURE_LIMIT: usize = 64 * 1024;

/// The log of the invocation in progress on one worker.
#[derive(Debug, Default)]
pub(crate) struct LogCapture {
    buffer: Mutex<Option<Vec<u8>>>,
}

impl LogCapture {
    /// Starts capturing for a new invocation.
    pub(crate) fn start(&self) {
        *self.lock() = Some(Vec::new());
    }

    /// Stops capturing and returns the last [`TAIL_BYTES`].
    pub(crate) fn finish(&self) -> Vec<u8> {
        let mut captured = self.lock().take().unwrap_or_default();
        let excess = captured.len().saturating_sub(TAIL_BYTES);
        captured.drain(..excess);
        captured
    }

    /// Writes a line to stderr (prefixed) and to the capture.
    pub(crate) fn line(&self, prefix: &str, line: &[u8]) {
        let mut stderr = std::io::stderr().lock();
        // Nothing sensible to do when stderr is gone.
        let _ = stderr
            .write_all(prefix.as_bytes())
            .and_then(|()| stderr.write_all(line))
            .and_then(|()| stderr.write_all(b"\n"));
        drop(stderr);
        self.capture(line);
    }

    /// Adds a line to the capture, if one is running.
    fn capture(&self, line: &[u8]) {
        if let Some(buffer) = self.lock().as_mut() {
            buffer.extend_from_slice(line);
            buffer.push(b'\n');
            let excess = buffer.len().saturating_sub(CAPTURE_LIMIT);
            if excess > 0 {
                buffer.drain(..excess);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Copies `reader` line by line to stderr and the capture until it ends.
pub(crate) fn forward(
    reader: impl AsyncRead + Unpin + Send + 'static,
    prefix: String,
    capture: Arc<LogCapture>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
                    let trimmed = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
                    capture.line(&prefix, trimmed);
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail() {
        let capture = LogCapture::default();
        capture.capture(b"ignored: not capturing yet");
        capture.start();
        for i in 0..1000 {
            capture.capture(format!("line {i:04}").as_bytes());
        }
        let tail = capture.finish();
        assert_eq!(tail.len(), TAIL_BYTES);
        assert!(tail.ends_with(b"line 0999\n"));
        assert!(capture.finish().is_empty());
    }
}
