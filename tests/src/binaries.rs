//! Finding the workspace's binaries (the local server, the function binaries) in the target
//! directory the tests run from. The test command builds them all (`cargo build --workspace
//! --bins`) before `cargo test`; a missing one fails the test with the command that builds it.

use std::path::{Path, PathBuf};

/// The directory of `target/<profile>` binaries: `E2E_BIN_DIR` if set, else the first ancestor
/// of this test executable (`target/debug/deps/<test>`) that holds `name`, else
/// `$CARGO_TARGET_DIR/debug`.
fn candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os("E2E_BIN_DIR") {
        dirs.push(PathBuf::from(dir));
    }
    if let Ok(exe) = std::env::current_exe() {
        dirs.extend(exe.ancestors().skip(1).take(3).map(Path::to_path_buf));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        dirs.push(PathBuf::from(dir).join("debug"));
    }
    dirs
}

/// The path of the workspace binary `name`. Panics with how to build it if it is missing.
#[track_caller]
pub fn binary(name: &str) -> PathBuf {
    let dirs = candidates();
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the `{name}` binary is not built: run `cargo build --workspace --bins` with the same \
                 CARGO_TARGET_DIR first (scripts/test does). Looked in: {dirs:?}"
            )
        })
}

/// The workspace root (the parent of this package), for `cargo lambda`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits inside the workspace")
        .to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "is not built")]
    fn a_missing_binary_fails_with_the_build_command() {
        binary("no-such-binary-in-this-workspace");
    }

    #[test]
    fn the_workspace_root_holds_the_workspace_manifest() {
        assert!(workspace_root().join("Cargo.toml").is_file());
    }
}
