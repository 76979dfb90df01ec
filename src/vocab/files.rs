//! Files as every layer reads and writes them: whole files read with a bound (every input is
//! hostile, so nothing is read without a size limit), and reports staged beside their targets,
//! then renamed into place, so a reader never sees a partial or stale file.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::error::{Error, Result};

/// Opens a file edgecert reads as input, refusing at once anything that is not a regular file
/// (after symbolic links): a FIFO would block the run until some writer came, a device or a
/// socket would stream without end, a folder is not a document. The file is opened without
/// blocking and its type is read from the open descriptor, so nothing can be swapped in between
/// the check and the read.
pub fn open_regular(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let kind = file.metadata().map_err(|e| Error::io(path, e))?.file_type();
    let found = if kind.is_file() {
        return Ok(file);
    } else if kind.is_dir() {
        "a folder"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(Error::io(
        path,
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("expected a regular file, found {found}"),
        ),
    ))
}

/// Reads a whole file, naming it in the error. For files edgecert wrote itself or the user
/// names as a trusted artifact (a model, a golden sample); hostile documents go through
/// [`read_bounded`].
pub fn read_to_string(path: &Path) -> Result<String> {
    let mut text = String::new();
    open_regular(path)?.read_to_string(&mut text).map_err(|e| Error::io(path, e))?;
    Ok(text)
}

/// Reads a whole file as bytes, naming it in the error.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

/// Reads at most `max_bytes` of a file: a larger one is refused with `what` it was expected to
/// be, before more than `max_bytes + 1` bytes are held.
pub fn read_bounded(path: &Path, max_bytes: u64, what: &str) -> Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max_bytes + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::Report {
            path: path.to_path_buf(),
            message: format!("larger than {max_bytes} bytes: not {what}"),
        });
    }
    Ok(bytes)
}

/// Writes several files so that either all of them land or none does: each is written under a
/// unique temporary name in its final folder (two writers, threads or processes, never share
/// one), then all are renamed into place. A temporary file not renamed is removed when dropped.
pub fn write_all_atomically(files: &[(PathBuf, Vec<u8>)]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for (path, bytes) in files {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{}.", file_name(path)))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
        staged.push((tmp, path));
    }
    // Every file is complete on disk before the first rename; a rename failing (a full or
    // read-only folder) leaves the files not yet renamed as they were.
    for (tmp, path) in staged {
        tmp.persist(path)
            .map_err(|e| Error::Report { path: path.to_path_buf(), message: e.error.to_string() })?;
    }
    Ok(())
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
