//! Folders for what the tools write (reports, JSON, JUnit): one way to make them, so
//! that every tool says the same thing when it cannot.

use std::io;
use std::path::Path;

/// Creates `dir` and the folders above it, as [`std::fs::create_dir_all`] does. Where
/// it cannot because `dir` or a folder above it is a file, the error names that file
/// (`/etc/passwd is a file, not a folder`), where the system said only "File exists"
/// or "Not a directory", of a path the person did not write that way.
pub fn create_folder(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| {
        let file = dir
            .ancestors()
            .filter(|a| !a.as_os_str().is_empty())
            .find(|a| a.metadata().is_ok_and(|m| !m.is_dir()));
        match file {
            Some(file) => io::Error::new(
                e.kind(),
                format!("{} is a file, not a folder", file.display()),
            ),
            None => e,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_way_is_named() {
        let dir = std::env::temp_dir().join(format!("deviceflow-files-{}", std::process::id()));
        create_folder(&dir.join("a/b")).unwrap();
        assert!(dir.join("a/b").is_dir());
        std::fs::write(dir.join("a/f"), b"").unwrap();
        for under in ["a/f", "a/f/x/y"] {
            let e = create_folder(&dir.join(under)).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("{} is a file, not a folder", dir.join("a/f").display())
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
