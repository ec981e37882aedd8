//! S3 in a build without the `aws-s3` feature: every `s3://` path is refused.

use std::path::Path;

use crate::crypt::{Done, Op, Settings};
use crate::error::AppError;
use crate::output::SkipCheck;

fn off() -> AppError {
    AppError::usage(
        "s3:// paths and --manifest need the aws-s3 feature, not compiled into this build",
    )
}

pub fn single(
    _op: Op<'_>,
    _input: Option<&Path>,
    _output: Option<&Path>,
    _settings: &Settings,
) -> Result<Done, AppError> {
    Err(off())
}

pub fn inspect_path(_path: &Path) -> Result<(), AppError> {
    Err(off())
}

pub mod runs {
    use super::*;

    /// The same fields as with S3, so that callers compile either way.
    #[allow(dead_code)]
    pub struct Request<'a> {
        pub op: Op<'a>,
        pub manifest: Option<&'a Path>,
        /// One `s3://BUCKET/KEY` (`rewrap --in-place` of an object).
        pub object: Option<&'a Path>,
        pub shard: Option<&'a str>,
        pub prefix: Option<&'a Path>,
        pub output: Option<&'a Path>,
        pub in_place: bool,
        pub settings: &'a Settings,
        pub report: Option<&'a Path>,
        pub skip: Option<SkipCheck<'a>>,
    }

    pub fn run(_request: Request<'_>) -> Result<(), AppError> {
        Err(super::off())
    }
}

pub mod folder {
    use super::*;

    pub fn run(
        _op: Op<'_>,
        _input: &Path,
        _output: &Path,
        _settings: &Settings,
    ) -> Result<(), AppError> {
        Err(super::off())
    }
}
