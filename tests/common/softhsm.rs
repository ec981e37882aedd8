//! A SoftHSM2 installation in a temporary directory, shared by the PKCS#11 tests.
//!
//! Needs SoftHSM2 (`softhsm2-util` and the module, path from `ENVCRYPT_SOFTHSM_MODULE`,
//! default `/usr/lib/softhsm/libsofthsm2.so`) and OpenSC's `pkcs11-tool`
//! (`apt-get install -y softhsm2 opensc`). A missing piece fails the test with that hint;
//! nothing is skipped.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const INSTALL_HINT: &str = "install SoftHSM2 and OpenSC: apt-get install -y softhsm2 opensc \
     (set ENVCRYPT_SOFTHSM_MODULE if libsofthsm2.so is not at /usr/lib/softhsm/libsofthsm2.so)";

/// A token directory with its `softhsm2.conf`.
pub struct SoftHsm {
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub module: PathBuf,
}

/// The module path (`ENVCRYPT_SOFTHSM_MODULE` or the Debian default); panics when missing.
pub fn module_path() -> PathBuf {
    let module = std::env::var_os("ENVCRYPT_SOFTHSM_MODULE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/softhsm/libsofthsm2.so"));
    assert!(
        module.is_file(),
        "SoftHSM2 module {} not found; {INSTALL_HINT}",
        module.display()
    );
    module
}

fn check_tool(tool: &str, arg: &str) {
    match Command::new(tool).arg(arg).output() {
        Ok(_) => {}
        Err(e) => panic!("cannot run {tool}: {e}; {INSTALL_HINT}"),
    }
}

impl SoftHsm {
    /// A fresh, empty token directory under Cargo's temporary directory for tests, named
    /// after `tag` and this process (directories of processes that are gone are removed).
    pub fn create(tag: &str) -> SoftHsm {
        let module = module_path();
        check_tool("softhsm2-util", "--version");
        check_tool("pkcs11-tool", "--help");
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let prefix = format!("softhsm-{tag}-");
        if let Ok(entries) = fs::read_dir(base) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix(&prefix) {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = fs::remove_dir_all(entry.path());
                    }
                }
            }
        }
        let dir = base.join(format!("{prefix}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let tokens = dir.join("tokens");
        fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        SoftHsm { dir, conf, module }
    }

    fn run(&self, program: &str, args: &[&OsStr]) -> Output {
        let out = Command::new(program)
            .args(args)
            .env("SOFTHSM2_CONF", &self.conf)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}; {INSTALL_HINT}"));
        out
    }

    fn run_ok(&self, program: &str, args: &[&OsStr], what: &str) -> Output {
        let out = self.run(program, args);
        assert!(
            out.status.success(),
            "{what}: {program} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `softhsm2-util --init-token --free --label LABEL --pin PIN --so-pin SO_PIN`.
    pub fn init_token(&self, label: &str, pin: &str, so_pin: &str) {
        let args = [
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin,
            "--so-pin",
            so_pin,
        ];
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        self.run_ok("softhsm2-util", &args, &format!("creating token {label}"));
    }

    /// Runs `pkcs11-tool --module M --token-label TOKEN --login --pin PIN ARGS...`.
    pub fn pkcs11_tool(&self, token: &str, pin: &str, args: &[&OsStr]) -> Output {
        let mut all: Vec<&OsStr> = vec![
            OsStr::new("--module"),
            self.module.as_os_str(),
            OsStr::new("--token-label"),
            OsStr::new(token),
            OsStr::new("--login"),
            OsStr::new("--pin"),
            OsStr::new(pin),
        ];
        all.extend_from_slice(args);
        self.run("pkcs11-tool", &all)
    }

    fn pkcs11_tool_ok(&self, token: &str, pin: &str, args: &[&str], what: &str) {
        let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let out = self.pkcs11_tool(token, pin, &args);
        assert!(
            out.status.success(),
            "{what}: pkcs11-tool failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Imports AES key bytes as a sensitive, non-extractable secret key.
    pub fn import_aes(&self, token: &str, pin: &str, label: &str, id: &str, key: &[u8]) {
        let file = self.dir.join(format!("import-{label}.bin"));
        fs::write(&file, key).unwrap();
        let key_type = format!("AES:{}", key.len());
        self.pkcs11_tool_ok(
            token,
            pin,
            &[
                "--write-object",
                file.to_str().unwrap(),
                "--type",
                "secrkey",
                "--key-type",
                &key_type,
                "--label",
                label,
                "--id",
                id,
                "--sensitive",
                "--usage-decrypt",
            ],
            &format!("importing AES key {label}"),
        );
        fs::remove_file(&file).unwrap();
    }

    /// Generates an AES-256 key inside the token (sensitive, never extractable).
    pub fn generate_aes(&self, token: &str, pin: &str, label: &str, id: &str) {
        self.pkcs11_tool_ok(
            token,
            pin,
            &[
                "--keygen",
                "--key-type",
                "AES:32",
                "--label",
                label,
                "--id",
                id,
                "--sensitive",
                "--usage-decrypt",
            ],
            &format!("generating AES key {label}"),
        );
    }

    /// Generates an RSA key pair inside the token.
    pub fn generate_rsa(&self, token: &str, pin: &str, label: &str, id: &str, bits: usize) {
        self.pkcs11_tool_ok(
            token,
            pin,
            &[
                "--keypairgen",
                "--key-type",
                &format!("rsa:{bits}"),
                "--label",
                label,
                "--id",
                id,
                "--usage-decrypt",
            ],
            &format!("generating RSA key pair {label}"),
        );
    }

    /// Imports an RSA key pair: private key (PKCS#8 DER) and public key (SPKI DER).
    pub fn import_rsa(
        &self,
        token: &str,
        pin: &str,
        label: &str,
        id: &str,
        pkcs8: &[u8],
        spki: &[u8],
    ) {
        for (kind, der) in [("privkey", pkcs8), ("pubkey", spki)] {
            let file = self.dir.join(format!("import-{label}-{kind}.der"));
            fs::write(&file, der).unwrap();
            let mut args = vec![
                "--write-object",
                file.to_str().unwrap(),
                "--type",
                kind,
                "--label",
                label,
                "--id",
                id,
                "--usage-decrypt",
            ];
            if kind == "privkey" {
                args.push("--sensitive");
            }
            self.pkcs11_tool_ok(token, pin, &args, &format!("importing RSA {kind} {label}"));
            fs::remove_file(&file).unwrap();
        }
    }
}

/// Serialises the tests of one binary that start tool processes on a shared token.
/// SoftHSM's file store is rewritten when a login fails (its PIN counters), and a process
/// enumerating tokens meanwhile can miss the token ("no token labelled ..."): seen once in
/// CI. Each such test holds this guard for its whole run.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
