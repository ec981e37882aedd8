//! Key material is wiped before its memory is freed.
//!
//! This test binary's global allocator looks at every heap block as it is freed (or moved
//! by a reallocation) and counts the blocks that still hold a marked secret: a wrapping key,
//! a data key, an RSA private key, the audit signing key. Every copy the Rust side makes
//! (key objects, materials, PEM and DER buffers, frame keys' inputs, grown vectors) must be
//! wiped before it is freed. Memory owned by the C crypto library (AWS-LC frees its keys
//! with `OPENSSL_cleanse`) does not pass through this allocator.
//!
//! It lives in `ffi/` because a global allocator needs `unsafe`, which the project keeps
//! to this crate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use envcrypt::audit::AuditSigningKey;
use envcrypt::crypto::{default_provider, RsaPadding};
use envcrypt::keyring::{Keyring, KeyringError, MultiKeyring, RawAesKeyring, RawRsaKeyring};
use envcrypt::materials::{DecryptionMaterials, EncryptionMaterials};
use envcrypt::{Client, DecryptOptions, EncryptionContext};

const MARKER_LEN: usize = 32;
const MARKERS: usize = 4;

/// The secrets looked for (all zero = unused), whether scanning is on, and what it found.
static MARKED: [[AtomicU8; MARKER_LEN]; MARKERS] =
    [const { [const { AtomicU8::new(0) }; MARKER_LEN] }; MARKERS];
static ARMED: AtomicBool = AtomicBool::new(false);
static FOUND: [AtomicUsize; MARKERS] = [const { AtomicUsize::new(0) }; MARKERS];

struct Scanning;

// SAFETY: every method forwards to the system allocator with the caller's arguments; the
// only addition reads the block being freed, which is valid for `layout.size()` bytes until
// `System.dealloc` returns. `realloc` keeps the trait's default (alloc, copy, dealloc), so
// the old block of a grown vector is scanned too.
unsafe impl GlobalAlloc for Scanning {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Relaxed) && layout.size() >= MARKER_LEN {
            // SAFETY: `ptr` points to a live block of `layout.size()` bytes (the caller's
            // contract), read before it is handed back.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            scan(block);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Scanning = Scanning;

/// Counts each marked secret found in `block` (no allocation here: we are inside the
/// allocator).
fn scan(block: &[u8]) {
    for (m, found) in MARKED.iter().zip(&FOUND) {
        let mut marker = [0u8; MARKER_LEN];
        for (b, a) in marker.iter_mut().zip(m) {
            *b = a.load(Ordering::Relaxed);
        }
        if marker != [0; MARKER_LEN] && block.windows(MARKER_LEN).any(|w| w == marker) {
            found.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn mark(slot: usize, secret: &[u8]) {
    for (a, b) in MARKED[slot].iter().zip(secret) {
        a.store(*b, Ordering::Relaxed);
    }
}

/// A keyring that marks the data key it sees (copied into the static marker, no heap).
struct MarkDataKey<K>(K);

#[async_trait::async_trait]
impl<K: Keyring> Keyring for MarkDataKey<K> {
    async fn on_encrypt(
        &self,
        materials: EncryptionMaterials,
    ) -> Result<EncryptionMaterials, KeyringError> {
        let materials = self.0.on_encrypt(materials).await?;
        if let Some(key) = &materials.data_key {
            mark(1, key.expose_secret());
        }
        Ok(materials)
    }

    async fn on_decrypt(
        &self,
        materials: DecryptionMaterials,
        edks: &[envcrypt::format::EncryptedDataKey],
    ) -> Result<DecryptionMaterials, KeyringError> {
        self.0.on_decrypt(materials, edks).await
    }
}

const WRAPPING_KEY: [u8; 32] = [
    0x8e, 0x1f, 0x33, 0x90, 0x4c, 0x7a, 0x02, 0xd5, 0x6b, 0xe1, 0x19, 0xaa, 0x3c, 0x47, 0xf0, 0x5d,
    0x21, 0x98, 0xc6, 0x0e, 0x77, 0xb3, 0x4a, 0xfd, 0x13, 0x6c, 0x85, 0xd9, 0x2e, 0x50, 0xa4, 0x3b,
];

/// An RSA private key as PKCS#8 PEM from the system's `openssl`, and its DER.
fn rsa_private_key() -> (zeroize::Zeroizing<String>, zeroize::Zeroizing<Vec<u8>>) {
    use base64::Engine as _;
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("run openssl genpkey (install openssl)");
    assert!(out.status.success(), "openssl genpkey failed");
    let pem = zeroize::Zeroizing::new(String::from_utf8(out.stdout).unwrap());
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "not PKCS#8");
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    (pem, zeroize::Zeroizing::new(der))
}

#[test]
fn secrets_are_wiped_before_their_memory_is_freed() {
    let provider = default_provider();
    let (rsa_pem, rsa) = rsa_private_key();
    let audit_pem = AuditSigningKey::generate(provider)
        .unwrap()
        .to_pem()
        .unwrap();
    let audit_scalar: Vec<u8> = {
        use base64::Engine as _;
        let body: String = audit_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        // PKCS#8 ECPrivateKey: INTEGER 1, then the 48-byte scalar as an OCTET STRING.
        let at = der
            .windows(5)
            .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x30])
            .expect("the P-384 scalar")
            + 5;
        der[at..at + MARKER_LEN].to_vec()
    };
    mark(0, &WRAPPING_KEY);
    // Inside the private exponent's CRT values, near the end of the DER.
    mark(2, &rsa[rsa.len() - 100..rsa.len() - 100 + MARKER_LEN]);
    mark(3, &audit_scalar);
    ARMED.store(true, Ordering::SeqCst);

    // The scanner itself: an unwiped copy is found, a wiped one is not.
    drop(std::hint::black_box(WRAPPING_KEY.to_vec()));
    assert_eq!(
        FOUND[0].swap(0, Ordering::SeqCst),
        1,
        "the scanner missed a copy"
    );
    drop(zeroize::Zeroizing::new(std::hint::black_box(
        WRAPPING_KEY.to_vec(),
    )));
    assert_eq!(
        FOUND[0].load(Ordering::SeqCst),
        0,
        "a wiped copy was reported"
    );

    {
        let aes = RawAesKeyring::new("hosp", "key-a", &WRAPPING_KEY).unwrap();
        let escrow =
            RawRsaKeyring::from_pem("escrow", "2026", RsaPadding::OaepSha256, &rsa_pem).unwrap();
        let client = Client::new(MultiKeyring::from_arcs(
            Some(Arc::new(MarkDataKey(aes)) as Arc<dyn Keyring>),
            vec![Arc::new(escrow) as Arc<dyn Keyring>],
        ));
        let context = EncryptionContext::from_pairs([("purpose", "test")]);
        let plaintext = vec![0x42u8; 300_000];
        let message = client.encrypt(&plaintext, &context).unwrap();
        assert_eq!(
            client
                .decrypt(&message, &DecryptOptions::default())
                .unwrap()
                .plaintext,
            plaintext
        );
        // The streaming adapters and the file API copy keys into their workers.
        let mut w = client.encrypt_writer(Vec::new(), &context).unwrap();
        w.write_all(&plaintext).unwrap();
        let streamed = w.finish().unwrap();
        let mut r = client
            .decrypt_reader(&streamed[..], &DecryptOptions::default())
            .unwrap();
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in"), &plaintext).unwrap();
        client
            .encrypt_file(
                &dir.path().join("in"),
                &dir.path().join("in.enc"),
                &context,
                &Default::default(),
            )
            .unwrap();
        client
            .decrypt_file(
                &dir.path().join("in.enc"),
                &dir.path().join("out"),
                &DecryptOptions::default(),
                &Default::default(),
            )
            .unwrap();
        // Decrypting with the RSA key alone.
        let rsa_only = Client::new(
            RawRsaKeyring::from_pem("escrow", "2026", RsaPadding::OaepSha256, &rsa_pem).unwrap(),
        );
        rsa_only
            .decrypt(&message, &DecryptOptions::default())
            .unwrap();
        // The audit signing key, read from PEM and used.
        let key = AuditSigningKey::from_pem(&audit_pem, provider).unwrap();
        let _ = key.verifying_key().fingerprint();
    }

    ARMED.store(false, Ordering::SeqCst);
    let found: Vec<usize> = FOUND.iter().map(|f| f.load(Ordering::SeqCst)).collect();
    let data_key_marked = MARKED[1].iter().any(|b| b.load(Ordering::SeqCst) != 0);
    assert!(data_key_marked, "the data key was never seen");
    assert_eq!(
        found,
        [0, 0, 0, 0],
        "freed blocks still holding [wrapping key, data key, RSA private key, audit key]"
    );
}
