//! The tool's conveniences of `CLI.md`: `--metadata-output`, a bare `-c KEY` on decrypt,
//! `--suffix` and `--caching`, each with its refusals (`-K` files: `cli_keyring_file.rs`).

#[path = "common/cli.rs"]
mod tool;

use std::collections::BTreeSet;
use std::fs;

use serde_json::Value;
use tool::Scratch as Env;

const KA: &str = "raw-aes:site:key-a:a.key";
const KB: &str = "raw-aes:site:key-b:b.key";
/// A context value that must never reach a metadata line.
const SECRET_VALUE: &str = "VALUE-7f3a9-never-logged";

impl Env {
    /// A scratch directory with two AES keys and a plaintext.
    fn new() -> Self {
        let env = Self::empty();
        env.run(&["keygen", "aes256", "-o", "a.key"]).ok();
        env.run(&["keygen", "aes256", "-o", "b.key"]).ok();
        env.write("scan.dcm", b"DICM pixel data");
        env
    }

    /// The JSON lines of a metadata file.
    fn lines(&self, name: &str) -> Vec<Value> {
        let text = String::from_utf8(self.read(name)).expect("UTF-8 metadata");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }

    /// `inspect` of a message file.
    fn inspect(&self, name: &str) -> Value {
        let out = self.run(&["inspect", name]).ok();
        serde_json::from_slice(&out.stdout).expect("inspect JSON")
    }

    /// A folder of `n` small files.
    fn folder(&self, dir: &str, n: usize) {
        for i in 0..n {
            self.write(&format!("{dir}/f{i}.txt"), format!("file {i}").as_bytes());
        }
    }
}

fn key(v: &Value) -> (String, String) {
    (
        v["provider_id"].as_str().expect("provider_id").to_owned(),
        v["key"].as_str().expect("key").to_owned(),
    )
}

fn site(k: &str) -> (String, String) {
    ("site".to_owned(), k.to_owned())
}

#[test]
fn metadata_names_the_key_that_opened_the_message() {
    let env = Env::new();
    let ctx = format!("ward={SECRET_VALUE}");
    env.run(&[
        "encrypt",
        "-k",
        KA,
        "-k",
        KB,
        "-c",
        &ctx,
        "--metadata-output",
        "meta.jsonl",
        "-o",
        "scan.enc",
        "scan.dcm",
    ])
    .ok();
    // Only the second key: it must be named, not the first.
    env.run(&[
        "decrypt",
        "-k",
        KB,
        "--metadata-output",
        "meta.jsonl",
        "-o",
        "b.out",
        "scan.enc",
    ])
    .ok();
    env.run(&[
        "decrypt",
        "-k",
        KA,
        "--metadata-output",
        "meta.jsonl",
        "-o",
        "a.out",
        "scan.enc",
    ])
    .ok();
    let lines = env.lines("meta.jsonl");
    assert_eq!(lines.len(), 3, "{lines:?}");
    let header = env.inspect("scan.enc");
    for line in &lines {
        assert_eq!(line["outcome"], "ok");
        assert_eq!(line["message_id"], header["message_id"]);
        assert_eq!(line["suite"], header["suite"]);
        let keys: Vec<_> = line["encrypted_data_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(key)
            .collect();
        assert_eq!(keys, [site("key-a"), site("key-b")]);
        let ctx_keys: Vec<&str> = line["context_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert!(ctx_keys.contains(&"ward"), "{ctx_keys:?}");
    }
    assert_eq!(
        (lines[0]["op"].as_str(), lines[0]["input"].as_str()),
        (Some("encrypt"), Some("scan.dcm"))
    );
    assert_eq!(lines[0]["output"], "scan.enc");
    assert!(lines[0].get("unwrapped_by").is_none());
    assert_eq!(lines[1]["op"], "decrypt");
    assert_eq!(key(&lines[1]["unwrapped_by"]), site("key-b"));
    assert_eq!(key(&lines[2]["unwrapped_by"]), site("key-a"));
    // Context values never, in any form.
    let bytes = env.read("meta.jsonl");
    assert!(!String::from_utf8_lossy(&bytes).contains(SECRET_VALUE));
}

#[test]
fn metadata_of_a_failure_and_of_stdout() {
    let env = Env::new();
    env.run(&["encrypt", "-k", KA, "-o", "scan.enc", "scan.dcm"])
        .ok();
    env.run(&[
        "decrypt",
        "-k",
        KB,
        "--metadata-output",
        "m.jsonl",
        "-o",
        "x",
        "scan.enc",
    ])
    .fails(1);
    let lines = env.lines("m.jsonl");
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (
            lines[0]["outcome"].as_str(),
            lines[0]["error_kind"].as_str()
        ),
        (Some("failed"), Some("data"))
    );
    assert!(lines[0].get("message_id").is_none());

    // `-`: the line on stdout when the data goes to a file...
    let out = env
        .run(&[
            "decrypt",
            "-k",
            KA,
            "--metadata-output",
            "-",
            "-o",
            "plain",
            "scan.enc",
        ])
        .ok();
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line on stdout");
    assert_eq!(key(&line["unwrapped_by"]), site("key-a"));
    assert_eq!(out.stdout.iter().filter(|b| **b == b'\n').count(), 1);
    // ...refused when the data goes to stdout.
    let out = env
        .run(&["decrypt", "-k", KA, "--metadata-output", "-", "scan.enc"])
        .fails(2);
    assert!(out.stderr.contains("--metadata-output -"), "{}", out.stderr);
    assert!(out.stdout.is_empty());

    // Encrypting to stdout: the line describes the message written there.
    let out = env
        .run(&[
            "encrypt",
            "-k",
            KB,
            "--metadata-output",
            "s.jsonl",
            "scan.dcm",
        ])
        .ok();
    env.write("piped.enc", &out.stdout);
    let line = &env.lines("s.jsonl")[0];
    assert_eq!(line["output"], "-");
    assert_eq!(line["message_id"], env.inspect("piped.enc")["message_id"]);
}

#[test]
fn metadata_of_folder_runs_and_rewrap() {
    let env = Env::new();
    env.folder("in", 3);
    env.write("in/sub/deep.txt", b"deep");
    env.run(&[
        "encrypt",
        "-k",
        KA,
        "-r",
        "-q",
        "--metadata-output",
        "m.jsonl",
        "-o",
        "out",
        "in",
    ])
    .ok();
    let lines = env.lines("m.jsonl");
    assert_eq!(lines.len(), 4, "{lines:?}");
    let inputs: BTreeSet<&str> = lines.iter().map(|l| l["input"].as_str().unwrap()).collect();
    assert_eq!(inputs.len(), 4);
    assert!(lines
        .iter()
        .all(|l| l["op"] == "encrypt" && l["outcome"] == "ok"));
    let outputs: BTreeSet<String> = lines
        .iter()
        .map(|l| l["output"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        outputs.iter().any(|o| o.ends_with("out/sub/deep.txt.enc")),
        "{outputs:?}"
    );
    // Each line carries its own file's message id.
    for l in &lines {
        let out = l["output"].as_str().unwrap();
        let rel = &out[out.find("out/").unwrap()..];
        assert_eq!(l["message_id"], env.inspect(rel)["message_id"]);
    }

    env.run(&[
        "decrypt",
        "-k",
        KA,
        "-r",
        "-q",
        "--metadata-output",
        "d.jsonl",
        "-o",
        "back",
        "out",
    ])
    .ok();
    let lines = env.lines("d.jsonl");
    assert_eq!(lines.len(), 4);
    assert!(lines
        .iter()
        .all(|l| key(&l["unwrapped_by"]) == site("key-a")));

    // Rewrap: the new message's keys, and the old key that opened the source.
    env.run(&["encrypt", "-k", KA, "-o", "one.enc", "scan.dcm"])
        .ok();
    env.run(&[
        "rewrap",
        "-k",
        KA,
        "--to",
        KB,
        "--metadata-output",
        "r.jsonl",
        "-o",
        "two.enc",
        "one.enc",
    ])
    .ok();
    let line = &env.lines("r.jsonl")[0];
    assert_eq!(line["op"], "rewrap");
    assert_eq!(key(&line["unwrapped_by"]), site("key-a"));
    let keys: Vec<_> = line["encrypted_data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    assert_eq!(keys, [site("key-b")]);
    assert_eq!(line["message_id"], env.inspect("two.enc")["message_id"]);
}

#[test]
fn bare_context_key_on_decrypt_and_rewrap_only() {
    let env = Env::new();
    env.run(&[
        "encrypt",
        "-k",
        KA,
        "-c",
        "purpose=archive",
        "-o",
        "scan.enc",
        "scan.dcm",
    ])
    .ok();
    env.run(&[
        "decrypt", "-k", KA, "-c", "purpose", "-o", "ok.out", "scan.enc",
    ])
    .ok();
    assert_eq!(env.read("ok.out"), b"DICM pixel data");
    let out = env
        .run(&[
            "decrypt", "-k", KA, "-c", "study", "-o", "no.out", "scan.enc",
        ])
        .fails(1);
    assert!(
        out.stderr.contains("\"study\" is missing"),
        "{}",
        out.stderr
    );
    assert!(!env.exists("no.out"));
    // A bare key next to pairs: both checked.
    env.run(&[
        "decrypt",
        "-k",
        KA,
        "-c",
        "purpose",
        "-c",
        "purpose=archive",
        "-o",
        "both",
        "scan.enc",
    ])
    .ok();
    env.run(&[
        "rewrap", "-k", KA, "--to", KB, "-c", "purpose", "-o", "r.enc", "scan.enc",
    ])
    .ok();
    env.run(&[
        "rewrap", "-k", KA, "--to", KB, "-c", "study", "-o", "r2.enc", "scan.enc",
    ])
    .fails(1);
    assert!(!env.exists("r2.enc"));
    // Encrypt stores pairs: a bare key is a usage error.
    let out = env
        .run(&[
            "encrypt", "-k", KA, "-c", "purpose", "-o", "x.enc", "scan.dcm",
        ])
        .fails(2);
    assert!(out.stderr.contains("without a value"), "{}", out.stderr);
    assert!(!env.exists("x.enc"));
    env.run(&["decrypt", "-k", KA, "-c", "=v", "-o", "y", "scan.enc"])
        .fails(2);
}

#[test]
fn suffix_names_folder_outputs() {
    let env = Env::new();
    env.folder("in", 3);
    env.run(&[
        "encrypt", "-k", KA, "-r", "-q", "--suffix", ".sealed", "-o", "out", "in",
    ])
    .ok();
    let mut names: Vec<String> = fs::read_dir(env.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["f0.txt.sealed", "f1.txt.sealed", "f2.txt.sealed"]);
    env.write("out/notes.txt", b"not a message");
    // The default suffix takes none of them.
    env.run(&["decrypt", "-k", KA, "-r", "-o", "none", "out"])
        .ok();
    assert!(fs::read_dir(env.path("none")).map_or(true, |d| d.count() == 0));
    let out = env
        .run(&[
            "decrypt", "-k", KA, "-r", "--suffix", ".sealed", "-o", "back", "out",
        ])
        .ok();
    assert!(
        out.stderr.contains("notes.txt") && out.stderr.contains("does not end in .sealed"),
        "{}",
        out.stderr
    );
    assert_eq!(env.read("back/f1.txt"), b"file 1");
    assert!(!env.exists("back/notes.txt"));
    // rewrap -r takes the files with the suffix.
    let out = env
        .run(&[
            "rewrap", "-k", KA, "--to", KB, "-r", "--suffix", ".sealed", "-o", "moved", "out",
        ])
        .ok();
    assert!(
        out.stderr.contains("rewrapped 3, skipped 0, failed 0"),
        "{}",
        out.stderr
    );
    let out = env
        .run(&["rewrap", "-k", KA, "--to", KB, "-r", "-o", "moved2", "out"])
        .ok();
    assert!(
        out.stderr.contains("rewrapped 0, skipped 0, failed 0"),
        "{}",
        out.stderr
    );
    for bad in ["", "a/b", "/", ".", ".."] {
        let out = env
            .run(&[
                "encrypt", "-k", KA, "-r", "--suffix", bad, "-o", "bad", "in",
            ])
            .fails(2);
        assert!(out.stderr.contains("--suffix"), "{bad:?}: {}", out.stderr);
    }
    assert!(!env.exists("bad"));
}

/// The distinct EDKs (provider info: key name and IV) of the messages in `dir`.
fn distinct_edks(env: &Env, dir: &str) -> BTreeSet<String> {
    fs::read_dir(env.path(dir))
        .unwrap()
        .map(|e| {
            let name = format!("{dir}/{}", e.unwrap().file_name().into_string().unwrap());
            env.inspect(&name)["encrypted_data_keys"][0]["provider_info"].to_string()
        })
        .collect()
}

#[test]
fn caching_reuses_data_keys_within_its_limits() {
    let env = Env::new();
    env.folder("in", 5);
    let run = |out: &str, extra: &[&str]| {
        let mut args = vec!["encrypt", "-k", KA, "-r", "-q", "--threads", "1", "-o", out];
        args.extend_from_slice(extra);
        args.push("in");
        env.run(&args).ok();
    };
    run("plain", &[]);
    assert_eq!(distinct_edks(&env, "plain").len(), 5);
    run("cached", &["--caching"]);
    assert_eq!(distinct_edks(&env, "cached").len(), 1);
    run("limited", &["--caching", "--cache-max-messages", "2"]);
    assert_eq!(distinct_edks(&env, "limited").len(), 3);
    // Decrypting a cached folder, itself cached.
    env.run(&[
        "decrypt",
        "-k",
        KA,
        "-r",
        "-q",
        "--caching",
        "-o",
        "back",
        "cached",
    ])
    .ok();
    assert_eq!(env.read("back/f4.txt"), b"file 4");
    // Refusals: no folder, a limit without --caching, a zero limit.
    env.run(&["encrypt", "-k", KA, "--caching", "-o", "x.enc", "scan.dcm"])
        .fails(2);
    env.run(&[
        "encrypt",
        "-k",
        KA,
        "-r",
        "--cache-max-age",
        "5",
        "-o",
        "y",
        "in",
    ])
    .fails(2);
    env.run(&[
        "encrypt",
        "-k",
        KA,
        "-r",
        "--caching",
        "--cache-max-messages",
        "0",
        "-o",
        "z",
        "in",
    ])
    .fails(2);
    assert!(!env.exists("x.enc") && !env.exists("y") && !env.exists("z"));
}
