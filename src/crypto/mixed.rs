//! Providers assembled from components of others, where that is measured faster.
//!
//! `aws-lc-rs+openssl`: AWS-LC for AES-GCM, HKDF, random bytes and RSA; OpenSSL for the
//! signature (and its streaming SHA-384, which bounds the signed suite 0578) and digests.
//! OpenSSL 3's SHA-384 runs faster than AWS-LC's on this project's x86 machines, and a
//! signed message is bound by one serial SHA-384 over every byte (BENCHMARKS.md, "OpenSSL
//! provider"). A build with features `aws-lc-rs` and `openssl` (not `fips`) makes this mix
//! its default; it is never compiled into a `fips` build, and a provider chosen by name
//! (`aws-lc-rs`, `openssl`) uses its own module for everything.

use super::CryptoProvider;

/// aws-lc-rs with OpenSSL's signatures and digests.
pub static AWS_LC_RS_OPENSSL: CryptoProvider = CryptoProvider {
    name: "aws-lc-rs+openssl",
    aead: super::aws_lc_rs::PROVIDER.aead,
    hkdf: super::aws_lc_rs::PROVIDER.hkdf,
    signature: super::openssl::SIGNATURE,
    random: super::aws_lc_rs::PROVIDER.random,
    rsa: super::aws_lc_rs::PROVIDER.rsa,
    digest: super::openssl::DIGEST,
};
