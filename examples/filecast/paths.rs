//! Turning announced (untrusted) relative paths into places under the output directory.
//!
//! Invariant: a path is accepted only if it is relative, made of plain UTF-8 components (no
//! `..`, `.`, root, empty or NUL components), and every directory on the way from the output
//! directory to the file is a real directory, never a symlink, so nothing is created or
//! renamed outside the output directory.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Why an announced path was refused.
#[derive(Debug)]
pub(crate) enum PathRefusal {
    /// Empty, absolute, or with `..`, `.`, a NUL or an empty component.
    Invalid(&'static str),
    /// A directory on the way is a symlink (it could lead outside the output directory).
    Symlink(PathBuf),
    /// Something on the way is not a directory, or is the wrong kind of file at the end.
    NotADirectory(PathBuf),
    /// The file exists and overwriting was not allowed.
    Exists(PathBuf),
    /// The file system said no.
    Io(io::Error),
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathRefusal::Invalid(why) => write!(f, "{why}"),
            PathRefusal::Symlink(p) => write!(
                f,
                "{} is a symlink: it could lead outside the output directory",
                p.display()
            ),
            PathRefusal::NotADirectory(p) => write!(f, "{} is not a directory", p.display()),
            PathRefusal::Exists(p) => {
                write!(f, "{} exists (use --overwrite to replace it)", p.display())
            }
            PathRefusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Checks an announced path and returns its components. Pure: touches no file.
pub(crate) fn check_relative(path: &str) -> Result<Vec<&str>, PathRefusal> {
    if path.is_empty() {
        return Err(PathRefusal::Invalid("empty path"));
    }
    if path.contains('\0') {
        return Err(PathRefusal::Invalid("path contains a NUL byte"));
    }
    if path.starts_with('/') || path.starts_with('\\') {
        return Err(PathRefusal::Invalid("absolute path"));
    }
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts {
        match *part {
            "" => return Err(PathRefusal::Invalid("empty path component")),
            "." => return Err(PathRefusal::Invalid("'.' path component")),
            ".." => return Err(PathRefusal::Invalid("'..' path component")),
            _ => {}
        }
        // A component must be one plain name on this platform, too.
        let mut components = Path::new(part).components();
        if !matches!(
            (components.next(), components.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(PathRefusal::Invalid("path component is not a plain name"));
        }
    }
    Ok(parts)
}

/// Where a file will be written: its final path and the directory it lives in.
#[derive(Debug)]
pub(crate) struct Target {
    /// Final name of the file.
    pub(crate) path: PathBuf,
    /// Its directory (inside the output directory), where the temporary file goes too.
    pub(crate) dir: PathBuf,
}

/// Resolves `relative` under `root`, creating missing directories, refusing symlinked or
/// non-directory components, and an existing file unless `overwrite`.
pub(crate) fn prepare(root: &Path, relative: &str, overwrite: bool) -> Result<Target, PathRefusal> {
    let parts = check_relative(relative)?;
    let (file_name, dirs) = parts
        .split_last()
        .ok_or(PathRefusal::Invalid("empty path"))?;
    let mut dir = root.to_path_buf();
    for part in dirs {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(PathRefusal::Symlink(dir)),
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(PathRefusal::NotADirectory(dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(PathRefusal::Io)?;
            }
            Err(e) => return Err(PathRefusal::Io(e)),
        }
    }
    let path = dir.join(file_name);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => Err(PathRefusal::NotADirectory(path)),
        Ok(_) if !overwrite => Err(PathRefusal::Exists(path)),
        // Renaming over a symlink replaces the link itself, never its target.
        Ok(_) => Ok(Target { path, dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Target { path, dir }),
        Err(e) => Err(PathRefusal::Io(e)),
    }
}
