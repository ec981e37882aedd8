//! [`S3Error`]: a failed S3 call, with the service's error code and HTTP status.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::S3Object;

/// A failed S3 call: which call, on which object, and what the service (or the network)
/// said.
///
/// Reported as [`Error::S3`](crate::Error::S3), of kind [`Io`](crate::ErrorKind::Io).
/// [`code`](Self::code) and [`http_status`](Self::http_status) are S3's own (`NoSuchKey`
/// and 404, `PreconditionFailed` and 412, `AccessDenied` and 403, ...), for reports.
#[derive(Debug, Clone, thiserror::Error)]
#[error("S3 {operation} {object}: {message}")]
pub struct S3Error {
    operation: &'static str,
    object: String,
    code: Option<String>,
    status: Option<u16>,
    message: String,
}

impl S3Error {
    /// An error of `operation` on `object` that did not come from the service.
    pub(crate) fn local(operation: &'static str, object: &S3Object, message: String) -> Self {
        Self {
            operation,
            object: object.to_string(),
            code: None,
            status: None,
            message,
        }
    }

    /// No such object, found before a call that would have said so.
    pub(crate) fn not_found(operation: &'static str, object: &S3Object) -> Self {
        Self {
            operation,
            object: object.to_string(),
            code: Some("NotFound".into()),
            status: Some(404),
            message: "NotFound: no such object".into(),
        }
    }

    /// A condition found false before the call that would have checked it.
    pub(crate) fn precondition(operation: &'static str, object: &S3Object, why: &str) -> Self {
        Self {
            operation,
            object: object.to_string(),
            code: Some("PreconditionFailed".into()),
            status: Some(412),
            message: format!("PreconditionFailed: {why}"),
        }
    }

    /// The error of an SDK call.
    pub(crate) fn sdk<E>(
        operation: &'static str,
        object: &S3Object,
        e: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().map(str::to_owned).or_else(|| match status {
            // HEAD responses carry no body, hence no code.
            Some(404) => Some("NotFound".into()),
            Some(412) => Some("PreconditionFailed".into()),
            _ => None,
        });
        let message = match (&code, e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            _ => DisplayErrorContext(&e).to_string(),
        };
        Self {
            operation,
            object: object.to_string(),
            code,
            status,
            message,
        }
    }

    /// The S3 call that failed (`GetObject`, `UploadPart`, ...).
    pub fn operation(&self) -> &str {
        self.operation
    }

    /// S3's error code (`NoSuchKey`, `PreconditionFailed`, `AccessDenied`, ...), if the
    /// service answered.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The HTTP status of the service's answer, if it answered.
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }

    /// The object does not exist (or the version asked for does not).
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// A condition (`If-Match`, `If-None-Match`) failed: the object changed, or exists.
    pub fn is_precondition_failed(&self) -> bool {
        self.status == Some(412)
    }
}

/// `e`, with an S3 failure that reached the pipeline as an I/O error (a download's body, a
/// part upload) lifted back to [`Error::S3`](crate::Error::S3).
pub(crate) fn lift(e: crate::Error) -> crate::Error {
    match e {
        crate::Error::Io(io) if io.get_ref().is_some_and(|i| i.is::<S3Error>()) => {
            match io.into_inner().map(|i| i.downcast::<S3Error>()) {
                Some(Ok(s3)) => crate::Error::S3(*s3),
                _ => crate::Error::Internal("an S3 error changed type"),
            }
        }
        other => other,
    }
}
