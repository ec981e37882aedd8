//! The shared library's soname: `libenvcrypt.so.0` (the install script names the files).

fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libenvcrypt.so.0");
    }
}
