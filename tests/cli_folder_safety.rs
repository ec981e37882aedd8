//! The `envcrypt` tool's folder mode (`-r`) never writes into INPUT nor outside OUTDIR:
//! OUTDIR inside INPUT and INPUT inside OUTDIR are refused (exit 2, nothing written), and
//! symbolic links planted under OUTDIR (a subfolder pointing elsewhere, a link at an output
//! file's name) are not written through: those files fail with exit 2, the others are
//! written, and the places the links point to stay untouched.

#[path = "common/cli.rs"]
mod tool;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use tool::Scratch as Env;

const KEY: &str = "raw-aes:hospital-a:imaging:key";

/// A scratch directory with a key and a small study.
impl Env {
    fn new() -> Self {
        let env = Self::empty();
        env.run(&["keygen", "aes256", "-o", "key"]).ok();
        env.write("study/a.dcm", b"image a");
        env.write("study/sub/b.dcm", b"image b");
        env.write("study/sub/deeper/c.dcm", b"image c");
        env
    }

    fn is_link(&self, name: &str) -> bool {
        self.path(name)
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
    }

    /// Every entry under `name` (relative path -> contents, or `<dir>` / `<link>`); links
    /// are not followed.
    fn tree(&self, name: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        collect(&self.path(name), Path::new(""), &mut out);
        out
    }
}

fn collect(dir: &Path, rel: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let t = e.file_type().unwrap();
        let r = rel.join(e.file_name());
        let key = r.to_string_lossy().into_owned();
        if t.is_symlink() {
            out.insert(key, "<link>".into());
        } else if t.is_dir() {
            out.insert(key, "<dir>".into());
            collect(&e.path(), &r, out);
        } else {
            let data = fs::read(e.path()).unwrap();
            out.insert(key, String::from_utf8_lossy(&data).into_owned());
        }
    }
}

#[test]
fn outdir_inside_input_is_refused() {
    let env = Env::new();
    let before = env.tree("study");
    // Lexically, through `..`, and through a link that leads into INPUT.
    symlink("study/sub", env.path("alias")).unwrap();
    for outdir in ["study/enc", "study/sub/../x", "alias/new", "study"] {
        let out = env
            .run(&["encrypt", "-q", "-k", KEY, "-r", "-o", outdir, "study"])
            .fails(2);
        assert!(
            out.stderr.contains("or inside it"),
            "{outdir}: {}",
            out.stderr
        );
    }
    assert_eq!(env.tree("study"), before, "nothing written into INPUT");
}

#[test]
fn input_inside_outdir_is_refused() {
    let env = Env::new();
    env.write("top/study/a.dcm", b"image a");
    env.write("top/study/sub/b.dcm", b"image b");
    let before = env.tree("top");
    // OUTDIR an ancestor of INPUT (directly, as `.`, and through a link to it).
    symlink("top", env.path("top-link")).unwrap();
    for (outdir, input) in [
        ("top", "top/study"),
        ("top", "top/study/sub"),
        ("top-link", "top/study"),
        (".", "top/study"),
    ] {
        let out = env
            .run(&["encrypt", "-q", "-k", KEY, "-r", "-o", outdir, input])
            .fails(2);
        assert!(
            out.stderr.contains("is inside OUTDIR"),
            "{outdir} {input}: {}",
            out.stderr
        );
    }
    assert_eq!(
        env.tree("top"),
        before,
        "nothing written next to the inputs"
    );
    assert!(!env.path("top/study/a.dcm.enc").exists());
}

#[test]
fn a_linked_subfolder_in_outdir_is_not_written_through() {
    let env = Env::new();
    fs::create_dir(env.path("outside")).unwrap();
    fs::create_dir(env.path("up")).unwrap();
    symlink("../outside", env.path("up/sub")).unwrap();

    let out = env
        .run(&["encrypt", "-q", "-k", KEY, "-r", "-o", "up", "study"])
        .fails_each(2);
    assert!(
        out.stderr.contains("symbolic link") && out.stderr.contains("up/sub"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("2 of 3 files failed"), "{}", out.stderr);
    assert!(env.tree("outside").is_empty(), "{:?}", env.tree("outside"));
    assert!(env.is_link("up/sub"), "the link is left alone");
    // The file outside the linked folder was written, and decrypts.
    assert_eq!(
        env.tree("up").keys().collect::<Vec<_>>(),
        ["a.dcm.enc", "sub"]
    );
    env.run(&["decrypt", "-q", "-k", KEY, "-o", "a.out", "up/a.dcm.enc"])
        .ok();
    assert_eq!(fs::read(env.path("a.out")).unwrap(), b"image a");

    // --force changes nothing about links.
    env.run(&[
        "encrypt", "-q", "--force", "-k", KEY, "-r", "-o", "up", "study",
    ])
    .fails_each(2);
    assert!(env.tree("outside").is_empty());
}

#[test]
fn a_link_at_an_output_name_is_not_written_through() {
    let env = Env::new();
    env.write("victim", b"do not touch");
    fs::create_dir_all(env.path("up/sub")).unwrap();
    // A link to an existing file and a dangling link (which would create its target).
    symlink("../victim", env.path("up/a.dcm.enc")).unwrap();
    symlink("../../created-by-link", env.path("up/sub/b.dcm.enc")).unwrap();

    for force in [false, true] {
        let mut args = vec!["encrypt", "-q", "-k", KEY, "-r", "-o", "up", "study"];
        if force {
            args.insert(1, "--force");
        }
        let out = env.run(&args).fails_each(2);
        assert!(out.stderr.contains("2 of 3 files failed"), "{}", out.stderr);
        for name in ["up/a.dcm.enc", "up/sub/b.dcm.enc"] {
            assert!(
                out.stderr
                    .contains(&format!("output {name} is a symbolic link")),
                "force {force}: {}",
                out.stderr
            );
            assert!(env.is_link(name), "{name} left as it was");
        }
        assert_eq!(fs::read(env.path("victim")).unwrap(), b"do not touch");
        assert!(!env.path("created-by-link").exists());
        assert!(env.path("up/sub/deeper/c.dcm.enc").is_file());
    }

    // Decrypting into a folder with a planted link: the same.
    env.run(&["encrypt", "-q", "-k", KEY, "-r", "-o", "enc", "study"])
        .ok();
    fs::create_dir(env.path("back")).unwrap();
    symlink("../victim", env.path("back/a.dcm")).unwrap();
    let out = env
        .run(&[
            "decrypt", "-q", "--force", "-k", KEY, "-r", "-o", "back", "enc",
        ])
        .fails_each(2);
    assert!(out.stderr.contains("1 of 3 files failed"), "{}", out.stderr);
    assert_eq!(fs::read(env.path("victim")).unwrap(), b"do not touch");
    assert_eq!(fs::read(env.path("back/sub/b.dcm")).unwrap(), b"image b");
}
