//! Test double (labelled as one): s3s-fs with S3's conditional-request guarantees.
//!
//! s3s-fs checks `If-None-Match`/`If-Match` on `PutObject` but not atomically (two
//! concurrent conditional writes can both pass), and ignores `If-Match` on `GetObject` and
//! `DeleteObject`. S3 evaluates all three atomically. This wrapper serializes writes and
//! deletes and evaluates the missing conditions, so the code's conditional requests are
//! tested against S3's semantics; every other operation is s3s-fs's own.

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use s3s_fs::FileSystem;
use tokio::sync::Mutex;

/// s3s-fs with atomic conditional writes and deletes, and `If-Match` on reads.
pub struct AtomicConditions {
    fs: FileSystem,
    writes: Mutex<()>,
}

impl AtomicConditions {
    /// Wraps `fs`.
    pub fn new(fs: FileSystem) -> Self {
        Self {
            fs,
            writes: Mutex::new(()),
        }
    }

    /// The current ETag of `bucket/key`, `None` when it does not exist.
    async fn etag_of<T>(&self, like: &S3Request<T>, bucket: &str, key: &str) -> Option<String> {
        let input = HeadObjectInput::builder()
            .bucket(bucket.to_owned())
            .key(key.to_owned())
            .build()
            .ok()?;
        let head = S3Request {
            input,
            method: like.method.clone(),
            uri: like.uri.clone(),
            headers: like.headers.clone(),
            extensions: Default::default(),
            credentials: like.credentials.clone(),
            region: like.region.clone(),
            service: like.service.clone(),
            trailing_headers: None,
        };
        let out = self.fs.head_object(head).await.ok()?;
        out.output.e_tag.map(|e| e.value().to_owned())
    }
}

fn matches(condition: &ETagCondition, current: Option<&str>) -> bool {
    match (condition, current) {
        (_, None) => false,
        (ETagCondition::Any, Some(_)) => true,
        (ETagCondition::ETag(wanted), Some(etag)) => wanted.value() == etag,
    }
}

#[async_trait::async_trait]
impl S3 for AtomicConditions {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if let Some(condition) = &req.input.if_match {
            let current = self.etag_of(&req, &req.input.bucket, &req.input.key).await;
            if current.is_some() && !matches(condition, current.as_deref()) {
                return Err(s3_error!(PreconditionFailed, "the object has another ETag"));
            }
        }
        self.fs.get_object(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let _serialized = self.writes.lock().await;
        self.fs.put_object(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let _serialized = self.writes.lock().await;
        if let Some(condition) = &req.input.if_match {
            let current = self.etag_of(&req, &req.input.bucket, &req.input.key).await;
            if current.is_some() && !matches(condition, current.as_deref()) {
                return Err(s3_error!(PreconditionFailed, "the object has another ETag"));
            }
        }
        self.fs.delete_object(req).await
    }
}
