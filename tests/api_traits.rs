//! The public types' auto traits (a service shares a `Client` across threads and tasks),
//! and the async one-shot calls (feature `tokio`).

use envcrypt::keyring::{Keyring, MultiKeyring, RawAesKeyring};
use envcrypt::materials::MaterialsManager;
use envcrypt::stream::{DecryptingReader, EncryptingWriter};
use envcrypt::{
    Client, ClientBuilder, DecryptOptions, Decrypted, EncryptionContext, Error, Header,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}
fn error_like<T: std::error::Error + Send + Sync + 'static>() {}

#[test]
fn shared_types_are_send_and_sync() {
    send_sync::<Client>();
    send_sync::<ClientBuilder>();
    send_sync::<DecryptOptions>();
    send_sync::<EncryptionContext>();
    send_sync::<Header>();
    send_sync::<Decrypted>();
    send_sync::<RawAesKeyring>();
    send_sync::<MultiKeyring>();
    send_sync::<std::sync::Arc<dyn Keyring>>();
    send_sync::<std::sync::Arc<dyn MaterialsManager>>();
    send::<EncryptingWriter<std::fs::File>>();
    send::<DecryptingReader<std::fs::File>>();
    error_like::<Error>();
}

#[cfg(feature = "tokio")]
mod one_shot_async {
    use super::*;
    use envcrypt::AuthenticationError;

    fn client() -> Client {
        Client::new(RawAesKeyring::new("ns", "key", &[3; 32]).unwrap())
    }

    #[test]
    fn futures_can_be_spawned() {
        fn spawnable<F: std::future::Future + Send + 'static>(_: F) {}
        let client = client();
        let context = EncryptionContext::new();
        spawnable({
            let client = client.clone();
            let context = context.clone();
            async move { client.encrypt_async(b"x", &context).await }
        });
        spawnable(async move {
            client
                .decrypt_async(b"not a message", &DecryptOptions::default())
                .await
        });
    }

    #[tokio::test(flavor = "current_thread")]
    async fn round_trip_on_a_single_threaded_runtime() {
        let client = client();
        let context = EncryptionContext::from_pairs([("purpose", "archive")]);
        for len in [0usize, 1, 4096, 65536, 300_000] {
            let plaintext: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let message = client.encrypt_async(&plaintext, &context).await.unwrap();
            // The blocking one-shot reads it: the same message format.
            let sync = client
                .decrypt(&message, &DecryptOptions::default())
                .unwrap();
            assert_eq!(sync.plaintext, plaintext);
            let decrypted = client
                .decrypt_async(&message, &DecryptOptions::default())
                .await
                .unwrap();
            assert_eq!(decrypted.plaintext, plaintext, "length {len}");
            assert_eq!(
                decrypted.header.encryption_context.get("purpose"),
                Some("archive")
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tampered_message_is_refused_with_its_error() {
        let client = client();
        let mut message = client
            .encrypt_async(&[9u8; 10_000], &EncryptionContext::new())
            .await
            .unwrap();
        let at = message.len() - 200; // inside the last frame's ciphertext
        message[at] ^= 1;
        let err = client
            .decrypt_async(&message, &DecryptOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Authentication(
                    AuthenticationError::FrameTag { .. } | AuthenticationError::Signature
                )
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_context_mismatch_is_a_policy_error() {
        let client = client();
        let message = client
            .encrypt_async(b"x", &EncryptionContext::from_pairs([("a", "1")]))
            .await
            .unwrap();
        let options = DecryptOptions::default()
            .with_expected_context(EncryptionContext::from_pairs([("a", "2")]));
        let err = client.decrypt_async(&message, &options).await.unwrap_err();
        assert!(
            matches!(err, Error::Policy(envcrypt::PolicyError::ContextMismatch(ref k)) if k == "a"),
            "{err:?}"
        );
    }

    #[test]
    fn works_outside_a_runtime() {
        let client = client();
        let message =
            envcrypt::block_on(client.encrypt_async(b"outside", &EncryptionContext::new()))
                .unwrap();
        let decrypted =
            envcrypt::block_on(client.decrypt_async(&message, &DecryptOptions::default())).unwrap();
        assert_eq!(decrypted.plaintext, b"outside");
    }
}
