//! Which key an encrypted data key (EDK) names, read from the EDK alone (no key needed).
//!
//! A key is named by its provider id (a raw keyring's namespace, `aws-kms` for KMS) and:
//!
//! - raw AES (and PKCS#11 AES keys, which write the same format): the key name, i.e. the
//!   provider info without its 20-byte trailer (`u32` tag length in bits = 128, `u32` IV
//!   length = 12, the 12-byte IV);
//! - raw RSA (and PKCS#11 RSA key pairs, same format): the provider info, which is the key
//!   name;
//! - KMS: the provider info, which is the key ARN.
//!
//! Raw AES and raw RSA EDKs share their provider ids (any namespace), so the format is told
//! by the trailer: info ending in `00 00 00 80 00 00 00 0c` + 12 bytes is raw AES. A key
//! name that is UTF-8 never ends that way (a lone `0x80` byte is not UTF-8), so an RSA name
//! is never cut. Non-UTF-8 info is shown as `base64:` + its base64.

use base64::Engine as _;

use super::EncryptedDataKey;

/// Provider id of the AWS KMS keyrings' EDKs.
const KMS_PROVIDER_ID: &str = "aws-kms";
/// The raw AES provider info's trailer after the key name: tag length, IV length, IV.
const RAW_AES_TRAILER: usize = 20;
/// The tag length (bits) and IV length fields of that trailer, as every ESDK writes them.
const RAW_AES_FIELDS: [u8; 8] = [0, 0, 0, 128, 0, 0, 0, 12];

impl EncryptedDataKey {
    /// The name of the key this EDK claims to be wrapped by (see the rules above): what
    /// audit logs and key inventories count messages by. It says which key a message
    /// *claims*, not that the key opens it.
    ///
    /// ```
    /// use envcrypt::format::EncryptedDataKey;
    /// let kms = EncryptedDataKey {
    ///     provider_id: "aws-kms".into(),
    ///     provider_info: b"arn:aws:kms:us-east-1:111122223333:key/k1".to_vec(),
    ///     ciphertext: vec![0; 8],
    /// };
    /// assert_eq!(kms.key_name(), "arn:aws:kms:us-east-1:111122223333:key/k1");
    /// ```
    pub fn key_name(&self) -> String {
        let bytes = self.key_name_bytes();
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ),
        }
    }

    /// The part of the provider info that names the key.
    fn key_name_bytes(&self) -> &[u8] {
        let info = self.provider_info.as_slice();
        if self.provider_id == KMS_PROVIDER_ID {
            return info;
        }
        match info.len().checked_sub(RAW_AES_TRAILER) {
            Some(at) if info[at..].starts_with(&RAW_AES_FIELDS) => &info[..at],
            _ => info,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edk(provider_id: &str, info: &[u8]) -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: provider_id.to_owned(),
            provider_info: info.to_vec(),
            ciphertext: vec![7; 48],
        }
    }

    #[test]
    fn raw_aes_name_loses_its_trailer() {
        let mut info = b"imaging-2026".to_vec();
        info.extend_from_slice(&RAW_AES_FIELDS);
        info.extend_from_slice(&[0x80; 12]);
        assert_eq!(edk("hosp", &info).key_name(), "imaging-2026");
    }

    #[test]
    fn rsa_and_kms_names_are_the_info() {
        assert_eq!(edk("escrow", b"2026").key_name(), "2026");
        // A KMS ARN is never cut, even if it ended like a raw AES trailer.
        let mut arn = b"arn".to_vec();
        arn.extend_from_slice(&RAW_AES_FIELDS);
        arn.extend_from_slice(&[1; 12]);
        assert_eq!(
            edk("aws-kms", &arn).key_name(),
            format!(
                "base64:{}",
                base64::engine::general_purpose::STANDARD.encode(&arn)
            )
        );
    }

    #[test]
    fn non_utf8_names_are_base64() {
        assert_eq!(edk("ns", &[0xff, 0xfe]).key_name(), "base64://4=");
    }
}
