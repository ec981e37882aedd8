//! How a failed KMS call maps to a [`KeyringError`] (the table in the module docs).

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use super::KeyringError;

/// What a failed KMS call means for the keyring.
pub(super) enum Failure {
    Unreachable(String),
    Refused(String),
    BadCiphertext,
    Invalid(String),
}

pub(super) fn classify<E>(op: &str, key: &str, err: &SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = chain(err);
    let service = match err {
        SdkError::TimeoutError(_) => {
            return Failure::Unreachable(format!("KMS {op} with {key} timed out ({detail})"))
        }
        SdkError::ServiceError(s) => s,
        // Connection refused/reset, DNS, TLS, a response that is not KMS's, or a request
        // that could not be made (no credentials): KMS was not reached.
        _ => return Failure::Unreachable(format!("KMS {op} with {key}: {detail}")),
    };
    let code = service.err().code().unwrap_or("");
    let message = service.err().message().unwrap_or("");
    let status = service.raw().status().as_u16();
    let why = if message.is_empty() {
        format!("{code} (HTTP {status})")
    } else {
        format!("{code}: {message}")
    };
    match code {
        "InvalidCiphertextException" | "IncorrectKeyException" => Failure::BadCiphertext,
        "DisabledException" => {
            Failure::Refused(format!("KMS key {key} is disabled ({op} refused: {why})"))
        }
        "KMSInvalidStateException" => Failure::Refused(format!(
            "KMS key {key} is not in a usable state, e.g. pending deletion ({op} refused: {why})"
        )),
        "AccessDeniedException"
        | "InvalidGrantTokenException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignature"
        | "MissingAuthenticationToken"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "NotAuthorized" => Failure::Refused(format!("KMS {op} with {key}: {why}")),
        "NotFoundException" => Failure::Invalid(format!("KMS key {key} not found ({why})")),
        "InvalidKeyUsageException" | "InvalidArnException" | "ValidationException" => {
            Failure::Invalid(format!("KMS {op} with {key}: {why}"))
        }
        "ThrottlingException"
        | "KMSInternalException"
        | "DependencyTimeoutException"
        | "KeyUnavailableException"
        | "LimitExceededException" => Failure::Unreachable(format!("KMS {op} with {key}: {why}")),
        _ if status >= 500 || status == 429 => {
            Failure::Unreachable(format!("KMS {op} with {key}: {why}"))
        }
        _ => Failure::Refused(format!("KMS {op} with {key}: {why}")),
    }
}

/// An error and its sources on one line ("dispatch failure: io error: ...: Connection
/// refused"), without the SDK's debug dump.
pub(super) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}

/// A failure of `GenerateDataKey`/`Encrypt` as a keyring error.
pub(super) fn encrypt_error<E>(op: &str, key: &str, err: SdkError<E>) -> KeyringError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match classify(op, key, &err) {
        Failure::Unreachable(m) => KeyringError::Unavailable(m),
        Failure::Refused(m) => KeyringError::AccessDenied(m),
        Failure::Invalid(m) => KeyringError::InvalidKey(m),
        Failure::BadCiphertext => {
            KeyringError::InvalidKey(format!("KMS {op} with {key}: {}", chain(&err)))
        }
    }
}
