//! The tool's conveniences: `-v`/`-vv` logging to stderr (and that it never shows a
//! secret), `completions SHELL` and `manpage`. Each test runs the built tool (the binary of
//! `tests/common/cli.rs`).

#[path = "common/cli.rs"]
mod tool;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use base64::Engine as _;
use serde_json::Value;
use tool::{command, run, Out, Scratch as Env};

/// A known raw AES key (32 bytes) and what a log line might leak of it.
const KEY_BYTES: [u8; 32] = *b"K3y-bytes-that-must-never-leak!!";
const RAW_KEY: &str = "raw-aes:hosp:key-2026:raw.key";
const B64_KEY: &str = "raw-aes:hosp:key-2026:b64.key";
/// A context value (values are never logged; the key is).
const CONTEXT_VALUE: &str = "ctx-value-4f1e9a";
/// Marks the plaintext.
const PLAIN_MARK: &[u8] = b"PLAINTEXT-MARK-77c0";

/// A scratch directory with the key as raw bytes and as base64, and a plaintext.
fn env() -> Env {
    let env = Env::empty();
    env.write("raw.key", &KEY_BYTES);
    let b64 = base64::engine::general_purpose::STANDARD.encode(KEY_BYTES);
    env.write("b64.key", format!("{b64}\n").as_bytes());
    env.write("plain.txt", &PLAIN_MARK.repeat(5000));
    for key in ["raw.key", "b64.key"] {
        private(&env, key);
    }
    env
}

/// Key files are private (else the tool warns on stderr).
fn private(env: &Env, name: &str) {
    fs::set_permissions(env.path(name), fs::Permissions::from_mode(0o600)).unwrap();
}

/// Runs the tool in `env` with `args` and `vars` set (RUST_LOG unset unless given).
fn run_env(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Out {
    let mut cmd = command(env.dir.path(), args);
    cmd.env_remove("RUST_LOG");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run(cmd, None)
}

/// The message id `inspect` reports for `file`.
fn message_id(env: &Env, file: &str) -> String {
    let out = env.run(&["inspect", file]).ok();
    let v: Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    v["message_id"].as_str().expect("message_id").to_owned()
}

fn encrypt_args<'a>(verbosity: &'a str, key: &'a str, out: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "encrypt",
        "-k",
        key,
        "-c",
        "purpose=ctx-value-4f1e9a",
        "-o",
        out,
        "plain.txt",
    ];
    if !verbosity.is_empty() {
        args.insert(0, verbosity);
    }
    args
}

#[test]
fn without_v_an_encrypt_and_decrypt_log_nothing() {
    let env = env();
    let out = run_env(&env, &encrypt_args("", RAW_KEY, "m.enc"), &[]).ok();
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
    let out = run_env(
        &env,
        &["decrypt", "-k", RAW_KEY, "-o", "back", "m.enc"],
        &[],
    )
    .ok();
    assert!(out.stderr.is_empty(), "{:?}", out.stderr);
}

#[test]
fn v_shows_one_info_event_per_step_with_the_message_id() {
    let env = env();
    let out = run_env(&env, &encrypt_args("-v", RAW_KEY, "m.enc"), &[]).ok();
    let id = message_id(&env, "m.enc");
    let field = format!("message_id={id}");
    let lines = out.stderr_lines();
    assert!(
        lines.iter().any(|l| l.contains(" INFO ")
            && l.contains("encrypt: message header ready")
            && l.contains(&field)
            && l.contains("suite=0x0578")
            && l.contains("edks=hosp/key-2026")
            && l.contains("context_keys=")
            && l.contains("purpose")),
        "{}",
        out.stderr
    );
    assert!(
        lines.iter().any(|l| l.contains(" INFO ")
            && l.contains("encrypt: done")
            && l.contains(&field)
            && l.contains("bytes_in=95000")),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("DEBUG"), "{}", out.stderr);

    let out = run_env(
        &env,
        &["-v", "decrypt", "-k", RAW_KEY, "-o", "back", "m.enc"],
        &[],
    )
    .ok();
    assert!(
        out.stderr_lines().iter().any(|l| l.contains(" INFO ")
            && l.contains("decrypt: message header ready")
            && l.contains(&field)),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr_lines().iter().any(|l| l.contains(" INFO ")
            && l.contains("decrypt: done")
            && l.contains(&field)
            && l.contains("bytes_out=95000")),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("back"), env.read("plain.txt"));
}

#[test]
fn vv_shows_debug_events_of_the_keyring_calls_and_the_pipeline() {
    let env = env();
    let out = run_env(&env, &encrypt_args("-vv", RAW_KEY, "m.enc"), &[]).ok();
    assert!(
        out.stderr_lines().iter().any(|l| l.contains("DEBUG")
            && l.contains("keyring on_encrypt: ok")
            && l.contains("call=\"generate\"")
            && l.contains("hosp/key-2026")),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pipeline: encrypt"), "{}", out.stderr);
    let out = run_env(
        &env,
        &["-vv", "decrypt", "-k", RAW_KEY, "-o", "back", "m.enc"],
        &[],
    )
    .ok();
    assert!(
        out.stderr_lines().iter().any(|l| l.contains("DEBUG")
            && l.contains("keyring on_decrypt: ok")
            && l.contains("call=\"unwrap\"")),
        "{}",
        out.stderr
    );
    // A wrong key: the failed unwrap is logged (and the run fails as usual).
    env.write("other.key", &[7; 32]);
    private(&env, "other.key");
    let out = run_env(
        &env,
        &[
            "-vv",
            "decrypt",
            "-k",
            "raw-aes:hosp:key-2026:other.key",
            "-o",
            "x",
            "m.enc",
        ],
        &[],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("keyring on_decrypt: failed"),
        "{}",
        out.stderr
    );
    assert!(!env.exists("x"));
}

#[test]
fn rust_log_replaces_the_level() {
    let env = env();
    let out = run_env(
        &env,
        &encrypt_args("", RAW_KEY, "m.enc"),
        &[("RUST_LOG", "envcrypt=debug")],
    )
    .ok();
    assert!(out.stderr.contains("DEBUG"), "{}", out.stderr);
    assert!(out.stderr.contains("keyring on_encrypt"), "{}", out.stderr);
}

/// Every form of the secrets of a run: key bytes (raw, base64, hex), context value,
/// plaintext.
fn secrets() -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let hex: String = KEY_BYTES.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        KEY_BYTES.to_vec(),
        b64.encode(KEY_BYTES).into_bytes(),
        hex.into_bytes(),
        // Any 8-byte run of the key (a partial or reformatted dump).
        KEY_BYTES[12..20].to_vec(),
        CONTEXT_VALUE.as_bytes().to_vec(),
        PLAIN_MARK.to_vec(),
    ]
}

/// Runs the tool with raw stderr bytes (no lossy UTF-8 conversion, so raw key bytes are
/// found as they are).
fn stderr_bytes(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Vec<u8> {
    let mut cmd = command(env.dir.path(), args);
    cmd.env_remove("RUST_LOG");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run envcrypt");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stderr
}

#[test]
fn no_secret_reaches_the_log_at_any_level() {
    let env = env();
    let mut runs = 0;
    for key in [RAW_KEY, B64_KEY] {
        for (flag, vars) in [("-vv", &[][..]), ("", &[("RUST_LOG", "trace")][..])] {
            let mut args = encrypt_args(flag, key, "m.enc");
            args.insert(args.len() - 1, "--force");
            let mut log = stderr_bytes(&env, &args, vars);
            let mut dec = vec!["decrypt", "-k", key, "-c", "purpose=ctx-value-4f1e9a"];
            dec.extend(["--force", "-o", "back", "m.enc"]);
            if !flag.is_empty() {
                dec.insert(0, flag);
            }
            log.extend(stderr_bytes(&env, &dec, vars));
            // The search below is over a log with the events in it.
            assert!(
                String::from_utf8_lossy(&log).contains("message_id="),
                "{}",
                String::from_utf8_lossy(&log)
            );
            for secret in secrets() {
                assert!(
                    !log.windows(secret.len()).any(|w| w == secret),
                    "{:?} found in the log: {}",
                    String::from_utf8_lossy(&secret),
                    String::from_utf8_lossy(&log)
                );
            }
            runs += 1;
        }
    }
    assert_eq!(runs, 4);
    assert_eq!(env.read("back"), env.read("plain.txt"));
}

/// The subcommands `envcrypt --help` lists.
fn subcommands(env: &Env) -> Vec<String> {
    let help = env.run(&["--help"]).ok().stdout_str();
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect();
    for expected in ["encrypt", "decrypt", "inspect", "completions", "manpage"] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    names
}

#[test]
fn bash_completions_parse_and_name_every_subcommand() {
    let env = Env::empty();
    let out = env.run(&["completions", "bash"]).ok();
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    let script = out.stdout_str();
    env.write("envcrypt.bash", script.as_bytes());
    let check = Command::new("bash")
        .args(["-n", "envcrypt.bash"])
        .current_dir(env.dir.path())
        .output()
        .expect("run bash -n");
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(script.contains("complete -F"), "{script}");
    for name in subcommands(&env) {
        assert!(
            script.contains(&format!("envcrypt__{name}")) || script.contains(&format!(" {name} ")),
            "{name} missing from the bash completions"
        );
    }
    // The other shells: a script each, for envcrypt.
    for (shell, mark) in [
        ("zsh", "#compdef envcrypt"),
        ("fish", "complete -c envcrypt"),
        ("elvish", "edit:completion:arg-completer[envcrypt]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = env.run(&["completions", shell]).ok();
        assert!(out.stdout_str().contains(mark), "{shell}");
    }
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let env = Env::empty();
    let out = env.run(&["completions", "tcsh"]).fails(2);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("tcsh"), "{}", out.stderr);
    env.run(&["completions"]).fails(2);
}

#[test]
fn manpage_is_roff_for_envcrypt_1() {
    let env = Env::empty();
    let out = env.run(&["manpage"]).ok();
    let page = out.stdout_str();
    // clap_mangen's roff opens with the definition of the apostrophe string (`.ie`/`.el`),
    // then the title.
    let first_macro = page
        .lines()
        .find(|l| l.starts_with('.') && !l.starts_with(".ie") && !l.starts_with(".el"))
        .expect("a roff macro");
    assert!(first_macro.starts_with(".TH envcrypt 1"), "{first_macro}");
    assert!(page.contains(".SH NAME\nenvcrypt"), "{page}");
    for name in subcommands(&env) {
        assert!(page.contains(&name), "{name} missing from the manual page");
    }
}

/// Other crates' events stay off stderr unless -vv: the AWS SDK warns about a missing config
/// file, which would add lines to the one-line error of CLI.md.
#[cfg(feature = "aws-kms")]
#[test]
fn other_crates_warnings_only_at_vv() {
    let env = env();
    let key = "aws-kms:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let vars = [
        ("AWS_CONFIG_FILE", "no-aws-config"),
        ("AWS_SHARED_CREDENTIALS_FILE", "no-aws-credentials"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "secret-example"),
        // Nothing listens there: the keyring cannot be reached (exit 4).
        ("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:9"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ];
    let args = ["encrypt", "-k", key, "-o", "m.enc", "plain.txt"];
    run_env(&env, &args, &vars).fails(4);
    let mut verbose = vec!["-vv"];
    verbose.extend(args);
    let out = run_env(&env, &verbose, &vars);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(out.stderr.contains("WARN aws_"), "{}", out.stderr);
    assert!(!out.stderr.contains("secret-example"), "{}", out.stderr);
    assert!(!env.exists("m.enc"));
}
