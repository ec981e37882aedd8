//! Loaded PKCS#11 modules, logged-in tokens and their session pools, shared by every
//! [`super::Pkcs11Keyring`] of the process.
//!
//! PKCS#11 state is per process: a module is initialised once (`C_Initialize`), and the login
//! state of a token is shared by every session the process has open on it. So:
//!
//! - each module (by path) is loaded and initialised once and kept for the life of the
//!   process (never finalised: other code in the process may use it too);
//! - each token (module, slot) has one [`Token`]: one login with the user PIN, a dedicated
//!   session that keeps the login alive, and a pool of idle read-only sessions that threads
//!   borrow for one operation at a time. Keyrings on the same token share it; it is dropped
//!   (sessions closed, so the token is logged out) with the last keyring using it. A keyring
//!   for a token that is already logged in must present the same PIN (compared in constant
//!   time), so a wrong PIN is refused even then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::RawAuthPin;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keyring::KeyringError;

/// Idle sessions kept per token; more are closed when returned.
const MAX_IDLE_SESSIONS: usize = 32;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The initialised module at `path`, loading and initialising it on first use.
pub(super) fn module(path: &Path) -> Result<Pkcs11, KeyringError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let key = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(ctx) = modules.get(&key) {
        return Ok(ctx.clone());
    }
    let shown = path.display();
    let ctx = Pkcs11::new(path).map_err(|e| {
        KeyringError::Unavailable(format!("cannot load the PKCS#11 module {shown}: {e}"))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(KeyringError::Unavailable(format!(
                "cannot initialise the PKCS#11 module {shown}: {}",
                describe(&e)
            )))
        }
    }
    modules.insert(key, ctx.clone());
    Ok(ctx)
}

/// The slot holding the token labelled `label` (and with serial `serial`, if given).
///
/// No such token: [`KeyringError::Unavailable`] (an HSM that is not plugged in or not
/// reachable); several: [`KeyringError::InvalidKey`] (the configuration is ambiguous).
pub(super) fn find_slot(
    ctx: &Pkcs11,
    label: &str,
    serial: Option<&str>,
) -> Result<Slot, KeyringError> {
    let slots = ctx.get_slots_with_token().map_err(|e| {
        KeyringError::Unavailable(format!("listing PKCS#11 slots: {}", describe(&e)))
    })?;
    let mut found = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if info.label() == label && serial.is_none_or(|s| info.serial_number() == s) {
            found.push(slot);
        }
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(KeyringError::Unavailable(format!(
            "no PKCS#11 token labelled {label:?}{}",
            serial
                .map(|s| format!(" with serial {s:?}"))
                .unwrap_or_default()
        ))),
        _ => Err(KeyringError::InvalidKey(format!(
            "{} PKCS#11 tokens are labelled {label:?}; add serial=... to choose one",
            found.len()
        ))),
    }
}

/// A token this process is logged in to, with its session pool.
pub(super) struct Token {
    ctx: Pkcs11,
    slot: Slot,
    pin: Option<Zeroizing<Vec<u8>>>,
    /// Never lent out: keeps the login alive while the pool changes.
    _login: Mutex<Session>,
    idle: Mutex<Vec<Session>>,
    broken: AtomicBool,
}

impl Token {
    /// The shared token of (`module_path`, `slot`), logging in with `pin` when it is new.
    pub(super) fn open(
        module_path: &Path,
        ctx: &Pkcs11,
        slot: Slot,
        label: &str,
        pin: Option<&str>,
    ) -> Result<Arc<Token>, KeyringError> {
        type Registry = HashMap<(PathBuf, u64), Weak<Token>>;
        static TOKENS: OnceLock<Mutex<Registry>> = OnceLock::new();
        let key = (
            module_path
                .canonicalize()
                .unwrap_or_else(|_| module_path.to_owned()),
            slot.id(),
        );
        // Held through the login so two keyrings never log in to one token at once.
        let mut tokens = lock(TOKENS.get_or_init(Default::default));
        tokens.retain(|_, t| t.strong_count() > 0);
        if let Some(token) = tokens.get(&key).and_then(Weak::upgrade) {
            if !token.is_broken() {
                let same = match (&token.pin, pin) {
                    (Some(a), Some(b)) => bool::from(a.as_slice().ct_eq(b.as_bytes())),
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    return Err(KeyringError::AccessDenied(format!(
                        "PKCS#11 token {label:?}: PIN incorrect (not the PIN this process logged in with)"
                    )));
                }
                return Ok(token);
            }
        }

        let session = ctx
            .open_ro_session(slot)
            .map_err(|e| session_error(label, &e))?;
        let info = ctx
            .get_token_info(slot)
            .map_err(|e| session_error(label, &e))?;
        match pin {
            Some(pin) => {
                let raw = RawAuthPin::new(Box::new(pin.as_bytes().to_vec()));
                match session.login_with_raw(UserType::User, &raw) {
                    // Logged in already: by an earlier Token of ours whose sessions are still
                    // open, or by code outside envcrypt (whose PIN we cannot check).
                    Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                    Err(e) => return Err(login_error(label, &e)),
                }
            }
            None if info.login_required() => {
                return Err(KeyringError::AccessDenied(format!(
                    "PKCS#11 token {label:?} requires a PIN and none was given"
                )))
            }
            None => {}
        }
        let token = Arc::new(Token {
            ctx: ctx.clone(),
            slot,
            pin: pin.map(|p| Zeroizing::new(p.as_bytes().to_vec())),
            _login: Mutex::new(session),
            idle: Mutex::new(Vec::new()),
            broken: AtomicBool::new(false),
        });
        tokens.insert(key, Arc::downgrade(&token));
        Ok(token)
    }

    /// True once an operation failed in a way that needs a new login (device removed,
    /// session closed, logged out, stale handles).
    pub(super) fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }

    /// Runs `f` on a pooled session of this token.
    ///
    /// A session whose operation failed at the session or device level is closed instead of
    /// returned to the pool, and the token is marked broken so keyrings reconnect.
    pub(super) fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<T, CkError> {
        let pooled = lock(&self.idle).pop();
        let session = match pooled {
            Some(s) => s,
            None => self.ctx.open_ro_session(self.slot).inspect_err(|e| {
                if breaks_token(e) {
                    self.broken.store(true, Ordering::Release);
                }
            })?,
        };
        let result = f(&session);
        match &result {
            Err(e) if breaks_session(e) => {
                if breaks_token(e) {
                    self.broken.store(true, Ordering::Release);
                }
                drop(session);
            }
            _ => {
                let mut idle = lock(&self.idle);
                if idle.len() < MAX_IDLE_SESSIONS {
                    idle.push(session);
                }
            }
        }
        result
    }
}

/// A short description of a cryptoki error: `C_Login failed: PinIncorrect`.
pub(super) fn describe(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("C_{function:?} failed: {rv:?}"),
        e => e.to_string(),
    }
}

/// The return value of an error, if it is one from the module.
fn rv(e: &CkError) -> Option<RvError> {
    match e {
        CkError::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Errors after which the session must not be reused.
fn breaks_session(e: &CkError) -> bool {
    breaks_token(e) || matches!(rv(e), Some(RvError::OperationActive))
}

/// Errors after which the login or the object handles cannot be trusted.
pub(super) fn breaks_token(e: &CkError) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::SessionClosed
                | RvError::SessionHandleInvalid
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::CryptokiNotInitialized
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
        )
    )
}

fn login_error(label: &str, e: &CkError) -> KeyringError {
    match rv(e) {
        Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange) => {
            KeyringError::AccessDenied(format!(
                "PKCS#11 token {label:?}: PIN incorrect ({})",
                describe(e)
            ))
        }
        Some(RvError::PinLocked | RvError::PinExpired | RvError::UserPinNotInitialized) => {
            KeyringError::AccessDenied(format!(
                "PKCS#11 token {label:?}: login refused ({})",
                describe(e)
            ))
        }
        _ => session_error(label, e),
    }
}

fn session_error(label: &str, e: &CkError) -> KeyringError {
    KeyringError::Unavailable(format!("PKCS#11 token {label:?}: {}", describe(e)))
}

/// A keyring error for a failed operation (other than a refused unwrap) doing `what`.
pub(super) fn op_error(what: &str, e: &CkError) -> KeyringError {
    match rv(e) {
        Some(
            RvError::UserNotLoggedIn
            | RvError::PinExpired
            | RvError::PinLocked
            | RvError::UserPinNotInitialized,
        ) => KeyringError::AccessDenied(format!("{what}: {}", describe(e))),
        Some(
            RvError::KeyFunctionNotPermitted
            | RvError::KeyTypeInconsistent
            | RvError::KeySizeRange
            | RvError::MechanismInvalid
            | RvError::MechanismParamInvalid,
        ) => KeyringError::InvalidKey(format!("{what}: {}", describe(e))),
        _ => KeyringError::Unavailable(format!("{what}: {}", describe(e))),
    }
}

/// True when a failed decryption means "these bytes do not decrypt under this key" (wrong
/// key, wrong context, tampered EDK) rather than a failure of the token. SoftHSM reports a bad
/// GCM tag or OAEP padding as `CKR_GENERAL_ERROR`; `0x35` is PKCS#11 3.0's
/// `CKR_AEAD_DECRYPT_FAILED`, which cryptoki 0.12 does not name.
pub(super) fn is_unwrap_refusal(e: &CkError) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::EncryptedDataInvalid
                | RvError::EncryptedDataLenRange
                | RvError::DataInvalid
                | RvError::DataLenRange
                | RvError::GeneralError
                | RvError::FunctionFailed
        )
    ) || matches!(rv(e), Some(RvError::UnknownErrorCode(0x35)))
}
