//! Function settings, read once per cold start.

use lambda_kit::sqs_retry::{RetryBackoff, check_backoff};
use serde::{Deserialize, Serialize};
use settings::{ConfigError, Settings, in_range};

use crate::options::{Format, Length, SummaryOptions};
use crate::summarize::Plan;

/// Settings from the environment; each field is a variable of the same name, upper case
/// (the README's table lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// `OUTPUT_BUCKET`: where results go; default: the source bucket.
    pub output_bucket: Option<String>,
    /// S3 uploads are processed only under this prefix.
    pub input_prefix: String,
    /// Prefix of summary records.
    pub summary_prefix: String,
    /// Prefix of failure records.
    pub failure_prefix: String,
    /// Prefix of the document workflow's result records.
    pub result_prefix: String,
    /// Prefix of the claims that stop duplicate deliveries of an upload event.
    pub claim_prefix: String,
    /// Prefix of the documents that start the document workflow.
    pub workflow_prefix: String,
    /// `DOCUMENTS_BUCKET`: where `POST /uploads` sends documents and `GET /documents`
    /// looks for them; default: `OUTPUT_BUCKET`.
    pub documents_bucket: Option<String>,
    /// How long an upload URL of `POST /uploads` stays valid, in seconds.
    pub upload_url_seconds: u64,
    /// Largest S3 object read, in bytes.
    pub max_document_bytes: u64,
    /// Largest extracted text summarized, in bytes.
    pub max_text_bytes: u64,
    /// Largest HTTP body or inline task text, in bytes.
    pub max_request_bytes: u64,
    /// Parts summarized at once by the background lanes: upload queue, batch workflow,
    /// workflow steps and direct invocations.
    pub summary_concurrency: usize,
    /// `HTTP_SUMMARY_CONCURRENCY`: parts summarized at once for `POST /summaries`, its jobs
    /// and the stream; default: `SUMMARY_CONCURRENCY`.
    pub http_summary_concurrency: Option<usize>,
    /// Overlap between consecutive parts, per mille of a part.
    pub chunk_overlap_per_mille: u32,
    /// Tokens a part summary may take.
    pub part_summary_tokens: u32,
    /// Length of S3-triggered summaries.
    pub summary_length: Length,
    /// Layout of S3-triggered summaries.
    pub summary_format: Format,
    /// The uploads queue's `maxReceiveCount`: a failure on this receive of a message also
    /// writes the document's failure record before the message goes to the dead-letter queue.
    pub upload_max_receives: u32,
    /// `UPLOAD_QUEUE_URL`: the uploads queue; with it, a failed upload message comes back
    /// after a backoff and an unstarted one at once, instead of after the queue's
    /// visibility timeout.
    pub upload_queue_url: Option<String>,
    /// Seconds a message that failed on its first receive stays away; doubled with each
    /// further receive.
    pub upload_retry_base_seconds: u32,
    /// The most seconds a failed message stays away.
    pub upload_retry_max_seconds: u32,
}

impl Default for Config {
    fn default() -> Self {
        let plan = Plan::default();
        Self {
            output_bucket: None,
            input_prefix: "incoming/".into(),
            summary_prefix: "summaries/".into(),
            failure_prefix: "failed/".into(),
            result_prefix: "results/".into(),
            claim_prefix: "claims/".into(),
            workflow_prefix: "workflow/".into(),
            documents_bucket: None,
            upload_url_seconds: 900,
            max_document_bytes: 20 * 1024 * 1024,
            max_text_bytes: 4 * 1024 * 1024,
            max_request_bytes: 1024 * 1024,
            summary_concurrency: plan.concurrency,
            http_summary_concurrency: None,
            chunk_overlap_per_mille: plan.overlap_per_mille,
            part_summary_tokens: plan.part_summary_tokens,
            summary_length: Length::default(),
            summary_format: Format::default(),
            upload_max_receives: 8,
            upload_queue_url: None,
            upload_retry_base_seconds: 60,
            upload_retry_max_seconds: 3600,
        }
    }
}

impl Settings for Config {
    const PREFIX: &'static str = "";

    fn validate(&self) -> Result<(), ConfigError> {
        in_range("MAX_DOCUMENT_BYTES", self.max_document_bytes, 1, 1 << 40)?;
        in_range("MAX_TEXT_BYTES", self.max_text_bytes, 1, 1 << 40)?;
        in_range("UPLOAD_URL_SECONDS", self.upload_url_seconds, 60, 3600)?;
        in_range(
            "MAX_REQUEST_BYTES",
            self.max_request_bytes,
            1,
            6 * 1024 * 1024,
        )?;
        in_range("SUMMARY_CONCURRENCY", self.summary_concurrency, 1, 64)?;
        if let Some(concurrency) = self.http_summary_concurrency {
            in_range("HTTP_SUMMARY_CONCURRENCY", concurrency, 1, 64)?;
        }
        in_range(
            "CHUNK_OVERLAP_PER_MILLE",
            self.chunk_overlap_per_mille,
            0,
            250,
        )?;
        in_range("PART_SUMMARY_TOKENS", self.part_summary_tokens, 16, 2048)?;
        // SQS takes a maxReceiveCount of 1 to 1000.
        in_range("UPLOAD_MAX_RECEIVES", self.upload_max_receives, 1, 1000)?;
        self.upload_retry_backoff().map(drop)
    }
}

impl Config {
    /// The backoff of failed upload messages, checked.
    pub fn upload_retry_backoff(&self) -> Result<RetryBackoff, ConfigError> {
        check_backoff(
            "UPLOAD_RETRY_BASE_SECONDS",
            self.upload_retry_base_seconds,
            "UPLOAD_RETRY_MAX_SECONDS",
            self.upload_retry_max_seconds,
        )
    }

    /// The uploads queue, if configured.
    pub fn upload_queue_url(&self) -> Option<&str> {
        self.upload_queue_url.as_deref().filter(|u| !u.is_empty())
    }

    /// Map-reduce tuning of the background lanes (`SUMMARY_CONCURRENCY` parts at once).
    pub fn plan(&self) -> Plan {
        Plan {
            concurrency: self.summary_concurrency,
            overlap_per_mille: self.chunk_overlap_per_mille,
            part_summary_tokens: self.part_summary_tokens,
        }
    }

    /// Map-reduce tuning of HTTP requests and their jobs (`HTTP_SUMMARY_CONCURRENCY` parts
    /// at once): the capacity plan sizes it within the HTTP share of the quotas.
    pub fn http_plan(&self) -> Plan {
        Plan {
            concurrency: self
                .http_summary_concurrency
                .unwrap_or(self.summary_concurrency),
            ..self.plan()
        }
    }

    /// Options for S3-triggered summaries.
    pub fn upload_options(&self) -> SummaryOptions {
        SummaryOptions {
            length: self.summary_length,
            format: self.summary_format,
            ..SummaryOptions::default()
        }
    }

    /// The bucket uploads go to and documents are looked up in, if configured.
    pub fn documents_bucket(&self) -> Option<&str> {
        self.documents_bucket
            .as_deref()
            .or(self.output_bucket.as_deref())
            .filter(|b| !b.is_empty())
    }

    /// Whether `key` is one of this function's own outputs (never processed: no loops).
    pub fn is_own_output(&self, key: &str) -> bool {
        [
            &self.summary_prefix,
            &self.failure_prefix,
            &self.result_prefix,
            &self.claim_prefix,
        ]
        .iter()
        .any(|p| key.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<const N: usize>(pairs: [(&str, &str); N]) -> Result<Config, ConfigError> {
        settings::from_vars(pairs)
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(read([]).unwrap(), Config::default());
        let c = read([
            ("SUMMARY_LENGTH", "short"),
            ("SUMMARY_FORMAT", "bullets"),
            ("SUMMARY_CONCURRENCY", "8"),
            ("OUTPUT_BUCKET", ""),
        ])
        .unwrap();
        assert_eq!(c.upload_options().length, Length::Short);
        assert_eq!(c.upload_options().format, Format::Bullets);
        assert_eq!(c.plan().concurrency, 8);
        assert_eq!(c.output_bucket, None);
    }

    #[test]
    fn http_requests_have_their_own_part_concurrency() {
        // Unset, HTTP requests run as many parts at once as the background lanes.
        let c = read([("SUMMARY_CONCURRENCY", "2")]).unwrap();
        assert_eq!((c.plan().concurrency, c.http_plan().concurrency), (2, 2));
        let c = read([
            ("SUMMARY_CONCURRENCY", "1"),
            ("HTTP_SUMMARY_CONCURRENCY", "6"),
        ])
        .unwrap();
        assert_eq!((c.plan().concurrency, c.http_plan().concurrency), (1, 6));
        assert_eq!(
            c.http_plan(),
            Plan {
                concurrency: 6,
                ..c.plan()
            }
        );
    }

    #[test]
    fn upload_retries() {
        let c = read([]).unwrap();
        assert_eq!(c.upload_queue_url(), None);
        assert_eq!(
            c.upload_retry_backoff().unwrap(),
            RetryBackoff::new(60, 3600)
        );
        let c = read([
            (
                "UPLOAD_QUEUE_URL",
                "https://sqs.us-east-1.amazonaws.com/1/uploads",
            ),
            ("UPLOAD_RETRY_BASE_SECONDS", "2"),
            ("UPLOAD_RETRY_MAX_SECONDS", "60"),
        ])
        .unwrap();
        assert_eq!(
            c.upload_queue_url(),
            Some("https://sqs.us-east-1.amazonaws.com/1/uploads")
        );
        assert_eq!(c.upload_retry_backoff().unwrap().ceiling(10), 60);
        // The base may not exceed the maximum.
        let err = read([
            ("UPLOAD_RETRY_BASE_SECONDS", "120"),
            ("UPLOAD_RETRY_MAX_SECONDS", "60"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "UPLOAD_RETRY_BASE_SECONDS");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("SUMMARY_LENGTH", "huge"),
            ("MAX_TEXT_BYTES", "0"),
            ("MAX_REQUEST_BYTES", "lots"),
            ("SUMMARY_CONCURRENCY", "0"),
            ("HTTP_SUMMARY_CONCURRENCY", "0"),
            ("HTTP_SUMMARY_CONCURRENCY", "65"),
            ("HTTP_SUMMARY_CONCURRENCY", "many"),
            ("CHUNK_OVERLAP_PER_MILLE", "500"),
            ("UPLOAD_MAX_RECEIVES", "0"),
            ("UPLOAD_RETRY_BASE_SECONDS", "0"),
            ("UPLOAD_RETRY_MAX_SECONDS", "43201"),
        ] {
            assert_eq!(read([(name, value)]).unwrap_err().variable, name);
        }
    }
}
