//! The panic boundary: no unwind crosses into C.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::error::{envcrypt_result, ENVCRYPT_PANIC};

/// Runs `f`; a panic becomes `ENVCRYPT_PANIC`.
pub(crate) fn guard(f: impl FnOnce() -> envcrypt_result) -> envcrypt_result {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(ENVCRYPT_PANIC)
}

/// For tests of the boundary: panics inside it and returns `ENVCRYPT_PANIC`. Not for
/// production use.
#[no_mangle]
pub extern "C" fn envcrypt_test_force_panic() -> envcrypt_result {
    guard(|| panic!("envcrypt_test_force_panic"))
}
