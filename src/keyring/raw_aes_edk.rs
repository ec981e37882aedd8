//! The raw AES EDK format, written once for the two keyrings that use it: the raw AES
//! keyring and the PKCS#11 keyring's AES-GCM path.
//!
//! Shared with every official SDK: provider id = the keyring's namespace; provider info =
//! key name (no length prefix) || `u32` tag length in bits (128) || `u32` IV length (12) ||
//! IV; ciphertext = the AES-GCM ciphertext of the data key || the 16-byte tag.

use crate::crypto::{NONCE_LEN, TAG_LEN};
use crate::format::EncryptedDataKey;

/// The tag length field of the provider info.
const TAG_BITS: u32 = (TAG_LEN * 8) as u32;

/// An EDK of one raw AES keyring (namespace and key name matched), not yet decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawAesEdk<'a> {
    /// The IV the data key was sealed under.
    pub(crate) iv: [u8; NONCE_LEN],
    /// The EDK's ciphertext: wrapped key || tag, as stored.
    pub(crate) ciphertext: &'a [u8],
}

impl<'a> RawAesEdk<'a> {
    /// The wrapped key and the tag; `None` when the ciphertext is shorter than a tag.
    pub(crate) fn split(&self) -> Option<(&'a [u8], &'a [u8; TAG_LEN])> {
        split_tag(self.ciphertext)
    }
}

/// Splits AES-GCM output `ciphertext || tag` (the EDK ciphertext, and what a PKCS#11 token
/// returns for `CKM_AES_GCM`); `None` when `sealed` is shorter than a tag.
pub(crate) fn split_tag(sealed: &[u8]) -> Option<(&[u8], &[u8; TAG_LEN])> {
    let at = sealed.len().checked_sub(TAG_LEN)?;
    let (wrapped, tag) = sealed.split_at(at);
    Some((wrapped, tag.try_into().ok()?))
}

/// The EDK of a data key sealed as `wrapped` (same length as the key) and `tag` under `iv`.
pub(crate) fn encode(
    namespace: &str,
    name: &str,
    iv: &[u8; NONCE_LEN],
    mut wrapped: Vec<u8>,
    tag: &[u8; TAG_LEN],
) -> EncryptedDataKey {
    let mut provider_info = Vec::with_capacity(name.len() + 8 + NONCE_LEN);
    provider_info.extend_from_slice(name.as_bytes());
    provider_info.extend_from_slice(&TAG_BITS.to_be_bytes());
    provider_info.extend_from_slice(&(NONCE_LEN as u32).to_be_bytes());
    provider_info.extend_from_slice(iv);
    wrapped.extend_from_slice(tag);
    EncryptedDataKey {
        provider_id: namespace.to_owned(),
        provider_info,
        ciphertext: wrapped,
    }
}

/// The parts of `edk` when it belongs to the keyring `namespace`/`name` (provider id equal,
/// provider info = name || 128 || 12 || a 12-byte IV); `None` when it does not ("not mine").
/// The ciphertext's length is not checked here (see [`RawAesEdk::split`]).
pub(crate) fn decode<'a>(
    edk: &'a EncryptedDataKey,
    namespace: &str,
    name: &str,
) -> Option<RawAesEdk<'a>> {
    if edk.provider_id != namespace {
        return None;
    }
    let info = edk.provider_info.strip_prefix(name.as_bytes())?;
    let (tag_bits, rest) = info.split_first_chunk::<4>()?;
    let (iv_len, iv) = rest.split_first_chunk::<4>()?;
    if u32::from_be_bytes(*tag_bits) != TAG_BITS
        || u32::from_be_bytes(*iv_len) as usize != NONCE_LEN
    {
        return None;
    }
    Some(RawAesEdk {
        iv: iv.try_into().ok()?,
        ciphertext: &edk.ciphertext,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IV: [u8; NONCE_LEN] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
    const TAG: [u8; TAG_LEN] = [0xee; TAG_LEN];

    fn info(name: &[u8], tag_bits: u32, iv_len: u32, iv: &[u8]) -> Vec<u8> {
        [name, &tag_bits.to_be_bytes(), &iv_len.to_be_bytes(), iv].concat()
    }

    #[test]
    fn encodes_exact_bytes() {
        let edk = encode("ns", "k1", &IV, vec![0xaa; 3], &TAG);
        assert_eq!(edk.provider_id, "ns");
        assert_eq!(
            edk.provider_info,
            [
                b'k', b'1', // key name, no length prefix
                0, 0, 0, 0x80, // tag bits: 128
                0, 0, 0, 0x0c, // IV length: 12
                0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, // IV
            ]
        );
        assert_eq!(edk.ciphertext, [[0xaa; 3].as_slice(), &[0xee; 16]].concat());
    }

    #[test]
    fn decodes_what_it_encodes() {
        let edk = encode("ns", "k1", &IV, vec![0xaa; 32], &TAG);
        let ours = decode(&edk, "ns", "k1").expect("ours");
        assert_eq!(ours.iv, IV);
        assert_eq!(ours.ciphertext, edk.ciphertext.as_slice());
        let (wrapped, tag) = ours.split().expect("long enough");
        assert_eq!((wrapped, tag), ([0xaa; 32].as_slice(), &TAG));
    }

    #[test]
    fn decodes_exact_bytes_and_refuses_others() {
        let edk = |provider_info: Vec<u8>, ciphertext: Vec<u8>| EncryptedDataKey {
            provider_id: "ns".into(),
            provider_info,
            ciphertext,
        };
        let good = edk(info(b"k", 128, 12, &IV), vec![1; 48]);
        assert_eq!(decode(&good, "ns", "k").unwrap().iv, IV);
        // Another namespace or name: not ours.
        assert_eq!(decode(&good, "other", "k"), None);
        assert_eq!(decode(&good, "ns", "j"), None);
        assert_eq!(decode(&good, "ns", "kk"), None);
        // A name that extends ours ("k2" for keyring "k") does not parse as ours.
        assert_eq!(
            decode(&edk(info(b"k2", 128, 12, &IV), vec![]), "ns", "k"),
            None
        );
        // Other tag or IV lengths, a short or long IV, a truncated provider info.
        for bad in [
            info(b"k", 96, 12, &IV),
            info(b"k", 128, 16, &[0; 16]),
            info(b"k", 128, 12, &IV[..11]),
            info(b"k", 128, 12, &[0; 13]),
            b"k\0\0\0\x80\0\0".to_vec(),
            b"k".to_vec(),
        ] {
            assert_eq!(
                decode(&edk(bad.clone(), vec![1; 48]), "ns", "k"),
                None,
                "{bad:?}"
            );
        }
        // Ours, but the ciphertext is shorter than a tag: decode answers, split does not.
        let short = edk(info(b"k", 128, 12, &IV), vec![1; 15]);
        assert_eq!(decode(&short, "ns", "k").unwrap().split(), None);
        let only_tag = edk(info(b"k", 128, 12, &IV), vec![1; 16]);
        let (wrapped, tag) = decode(&only_tag, "ns", "k").unwrap().split().unwrap();
        assert_eq!((wrapped.len(), tag), (0, &[1; 16]));
    }
}
