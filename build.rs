//! Records the git commit harness is built from (and whether the tree had uncommitted changes),
//! for the `git_commit` column of every results row.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "HEAD"]).filter(|c| c.len() == 40);
    let value = match commit {
        Some(commit) => {
            // Changes to tracked files only: untracked results and build outputs do not count.
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|status| !status.is_empty());
            if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            }
        }
        None => "unknown".to_string(),
    };
    println!("cargo:rustc-env=HARNESS_GIT_COMMIT={value}");
    // Look again when the checkout moves or a tracked file changes (paths that exist only:
    // cargo reruns the script on every build for a path that does not).
    let mut watched = vec![
        "src".to_string(),
        "Cargo.toml".to_string(),
        "Cargo.lock".to_string(),
    ];
    if let Some(git_dir) = git(&["rev-parse", "--git-dir"]) {
        for file in ["HEAD", "index", "refs"] {
            watched.push(format!("{git_dir}/{file}"));
        }
    }
    for path in watched {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
