//! File rules every part of warpgate follows: typed, bounded reads of local files; atomic
//! writes that never leave a half-written file or write through a link out of their folder;
//! temp files that an interrupted process does not leave behind; folders claimed with a
//! `CACHEDIR.TAG` before anything is written or deleted in them; and cross-process locks.
//!
//! These helpers return the plain I/O error: every caller wraps it with the action and the
//! path (a [`FileError`], a `with_context`), so the path is said once. That is also why this
//! module calls `std::fs` rather than `fs_err`, whose errors would name the path a second time
//! (and which keeps an error's kind but not its OS code, which [`open_regular`] reads).
#![expect(
    clippy::disallowed_methods,
    reason = "callers name the path; see the module docs"
)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use crate::checksum::{Checksum, Hasher};

/// The most bytes read from a plugin file whose size is not known in advance (the download
/// size limit of [`HttpOptions`](crate::http) has the same default).
pub const MAX_PLUGIN_SIZE: u64 = 256 * 1024 * 1024;

/// Whether a read follows a symbolic link at the path itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    /// Follow it (a `file://` plugin may be a link to the real file).
    Follow,
    /// Refuse it (files inside the cache and the vendor directory are never links).
    Refuse,
}

/// Opens `path` for reading if it is a regular file.
///
/// FIFOs, devices, sockets and folders are refused before a byte is read (the file is opened
/// non-blocking, so a FIFO without a writer cannot hang the open), and with [`Links::Refuse`]
/// so is a symbolic link. The error says what was found instead.
pub fn open_regular(path: &Path, links: Links) -> io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let no_follow = if links == Links::Refuse {
            libc::O_NOFOLLOW
        } else {
            0
        };
        options.custom_flags(libc::O_NONBLOCK | no_follow);
    }
    if links == Links::Refuse && std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(not_regular("a symbolic link"));
    }
    let file = options.open(path).map_err(|error| {
        // `O_NOFOLLOW` on a link that appeared since the check above.
        #[cfg(unix)]
        if error.raw_os_error() == Some(libc::ELOOP) && links == Links::Refuse {
            return not_regular("a symbolic link");
        }
        error
    })?;
    let file_type = file.metadata()?.file_type();
    if !file_type.is_file() {
        return Err(not_regular(describe(&file_type)));
    }
    #[cfg(unix)]
    clear_non_blocking(&file);
    Ok(file)
}

#[cfg(unix)]
#[expect(unsafe_code, reason = "fcntl has no safe wrapper in std")]
fn clear_non_blocking(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is an open descriptor owned by `file` for the duration of both calls.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

fn not_regular(found: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file: it is {found}"),
    )
}

fn describe(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a folder"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// A reader that fails once more than `limit` bytes would have been read, so that a file
/// that grows while it is read (or a regular file far larger than a plugin) is never read
/// without end.
#[derive(Debug)]
pub struct Bounded<R> {
    inner: R,
    limit: u64,
    read: u64,
}

impl<R: Read> Bounded<R> {
    /// `inner`, limited to `limit` bytes.
    pub fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            limit,
            read: 0,
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the limit is asked for, to tell "exactly `limit`" from "more".
        let room = (self.limit - self.read).saturating_add(1);
        let len = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..len])?;
        self.read += read as u64;
        if self.read > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("larger than {} bytes", self.limit),
            ));
        }
        Ok(read)
    }
}

/// Opens the regular file at `path` (see [`open_regular`]) for reading at most `limit` bytes.
pub fn open_bounded(path: &Path, limit: u64, links: Links) -> io::Result<Bounded<File>> {
    Ok(Bounded::new(open_regular(path, links)?, limit))
}

/// The checksum and size of the regular file at `path`, read up to `limit` bytes.
pub fn hash_file(path: &Path, limit: u64, links: Links) -> io::Result<(Checksum, u64)> {
    Checksum::of_reader(open_bounded(path, limit, links)?)
}

/// The bytes of the regular file at `path`, at most `limit` of them.
pub fn read_file(path: &Path, limit: u64, links: Links) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_bounded(path, limit, links)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The most bytes read from a text file warpgate reads whole: a config, a lockfile, a vendor
/// manifest, a record in the cache.
pub const MAX_TEXT_SIZE: u64 = 64 * 1024 * 1024;

/// The UTF-8 text of the regular file at `path`, at most [`MAX_TEXT_SIZE`] bytes.
pub fn read_text(path: &Path, links: Links) -> io::Result<String> {
    String::from_utf8(read_file(path, MAX_TEXT_SIZE, links)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// A file operation that failed, naming what was done and to which file:
/// "failed to {action} `{path}`", with the I/O error as its source.
#[derive(Debug, thiserror::Error)]
#[error("failed to {action} `{}`", path.display())]
pub struct FileError {
    /// What was being done ("read", "write", "create a temp file in", …).
    pub action: &'static str,
    /// The file or folder.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: io::Error,
}

impl crate::diagnostic::Diagnostic for FileError {}

impl FileError {
    /// For `map_err`: turns an I/O error of `action` on `path` into a [`FileError`] (or any
    /// error made from one).
    pub fn of<'a, E: From<Self>>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(io::Error) -> E + 'a {
        move |source| {
            Self {
                action,
                path: path.to_path_buf(),
                source,
            }
            .into()
        }
    }
}

/// Which side of [`copy_hashed`] failed.
#[derive(Debug)]
pub enum CopyError {
    /// Reading the input.
    Read(io::Error),
    /// Writing the output.
    Write(io::Error),
}

/// Streams `input` into `output` while hashing it; returns the checksum and size.
pub fn copy_hashed(
    mut input: impl Read,
    output: &mut impl Write,
) -> Result<(Checksum, u64), CopyError> {
    let mut hasher = Hasher::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let read = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(CopyError::Read(error)),
        };
        hasher.update(&buffer[..read]);
        output
            .write_all(&buffer[..read])
            .map_err(CopyError::Write)?;
    }
    Ok(hasher.finish())
}

/// Writes `bytes` to `path` through a temp file in the same folder and a rename, so `path`
/// holds either its old content or the new, never a mix.
///
/// An existing file keeps its permissions; a new file gets mode `0644` on Unix. A symbolic
/// link is written through (its target is replaced, the link stays) only when the target lies
/// inside the link's own folder: a `warpgate.lock` that links out of its project is refused
/// with an error that says where it points, so a planted link cannot make warpgate overwrite
/// a file elsewhere.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => link_target_inside(path)?,
        _ => path.to_path_buf(),
    };
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp = TempFile::new_in(folder, ".warpgate-", ".tmp")?;
    temp.write_all(bytes)?;
    match std::fs::metadata(&target) {
        Ok(metadata) => temp.as_file().set_permissions(metadata.permissions())?,
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                temp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(0o644))?;
            }
        }
    }
    temp.as_file().sync_all()?;
    temp.persist(&target)?;
    Ok(())
}

/// Writes `bytes` to `path` with [`write_atomically`] unless `path` already holds exactly these
/// bytes (then nothing is touched, not even its mtime). Returns whether it wrote.
pub fn write_if_changed(path: &Path, bytes: &[u8], links: Links) -> io::Result<bool> {
    let unchanged = match std::fs::metadata(path) {
        Ok(metadata) if metadata.len() == bytes.len() as u64 => {
            read_file(path, bytes.len() as u64, links).is_ok_and(|existing| existing == bytes)
        }
        Ok(_) => false,
        Err(error) if error.kind() == io::ErrorKind::NotFound => false,
        Err(error) => return Err(error),
    };
    if unchanged {
        return Ok(false);
    }
    write_atomically(path, bytes)?;
    Ok(true)
}

/// Whether `a` and `b` hold the same bytes (compared, not hashed: a comparison costs far less
/// than a hash). `a` is read with `links`; a `b` that is missing, not a regular file (a link
/// included) or of another size is `false` without reading `a`.
pub fn same_contents(a: &Path, links: Links, b: &Path) -> io::Result<bool> {
    let mut right = match open_regular(b, Links::Refuse) {
        Ok(file) => file,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
            ) =>
        {
            return Ok(false);
        }
        Err(error) => return Err(error),
    };
    let left_file = open_regular(a, links)?;
    if left_file.metadata()?.len() != right.metadata()?.len() {
        return Ok(false);
    }
    let mut left = Bounded::new(left_file, MAX_PLUGIN_SIZE);
    let mut buffer = vec![0; 256 * 1024];
    let mut other = vec![0; 256 * 1024];
    loop {
        let read = left.read(&mut buffer)?;
        if read == 0 {
            // `b` must not be longer.
            return Ok(right.read(&mut other[..1])? == 0);
        }
        match right.read_exact(&mut other[..read]) {
            Ok(()) if other[..read] == buffer[..read] => {}
            Ok(()) => return Ok(false),
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
            Err(error) => return Err(error),
        }
    }
}

/// The file the link at `path` resolves to, if it lies inside the link's folder.
fn link_target_inside(path: &Path) -> io::Result<PathBuf> {
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let folder = std::fs::canonicalize(folder)?;
    let points_to = std::fs::read_link(path)?;
    // The target's folder must exist; the target itself may not (a dangling link).
    let resolved = match std::fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(_) => {
            let joined = folder.join(&points_to);
            match (joined.parent(), joined.file_name()) {
                (Some(parent), Some(name)) => std::fs::canonicalize(parent)?.join(name),
                _ => joined,
            }
        }
    };
    if resolved.starts_with(&folder) {
        Ok(resolved)
    } else {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            LinkOutsideFolder {
                link: path.to_path_buf(),
                target: resolved,
                folder,
            },
        ))
    }
}

/// A write refused because the file is a symbolic link to a file outside the link's own
/// folder (carried inside an [`io::Error`] of kind `PermissionDenied`).
#[derive(Debug, thiserror::Error)]
#[error(
    "it is a symbolic link to `{}`, outside `{}`; refusing to write through it",
    target.display(),
    folder.display()
)]
pub struct LinkOutsideFolder {
    /// The link.
    pub link: PathBuf,
    /// Where it points.
    pub target: PathBuf,
    /// The link's folder.
    pub folder: PathBuf,
}

impl crate::diagnostic::Diagnostic for LinkOutsideFolder {
    fn hint(&self) -> Option<String> {
        Some(format!(
            "replace the link with a regular file (for example `cp --remove-destination \"$(readlink -f {name})\" {name}`), or point it at a file in the same folder",
            name = self.link.display()
        ))
    }
}

/// Temp files this process has open, removed by [`remove_temp_files`] when it is interrupted.
static LIVE_TEMP_FILES: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// A temp file that is deleted when dropped, and by [`remove_temp_files`] if the process is
/// interrupted first. While it lives, it holds an exclusive lock on itself: that lock is how
/// [`sweep_temp_files`] tells a file some live process owns from one a killed process left.
#[derive(Debug)]
pub struct TempFile {
    file: tempfile::NamedTempFile,
    _tracked: Tracked,
}

/// A path in [`LIVE_TEMP_FILES`], taken out on drop.
#[derive(Debug)]
struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        lock_live().remove(&self.0);
    }
}

impl TempFile {
    /// A new temp file in `dir` named `<prefix><random><suffix>`.
    pub fn new_in(dir: &Path, prefix: &str, suffix: &str) -> io::Result<Self> {
        let file = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(suffix)
            .tempfile_in(dir)?;
        // Best effort: a filesystem without locks leaves the file to the age rule of the sweep.
        let _ = file.as_file().try_lock();
        lock_live().insert(file.path().to_path_buf());
        let tracked = Tracked(file.path().to_path_buf());
        Ok(Self {
            file,
            _tracked: tracked,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The open file.
    pub fn as_file(&self) -> &File {
        self.file.as_file()
    }

    /// Renames the file to `target`, replacing what was there.
    pub fn persist(self, target: &Path) -> io::Result<File> {
        match self.file.persist(target) {
            Ok(file) => Ok(file),
            Err(error) => {
                // Dropping the returned temp file deletes it.
                drop(error.file);
                Err(error.error)
            }
        }
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn lock_live() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE_TEMP_FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Deletes every [`TempFile`] this process has open. For an interrupt handler that is about
/// to exit the process (destructors do not run on `exit`); the `warpgate` command calls it on
/// Ctrl-C.
pub fn remove_temp_files() {
    for path in std::mem::take(&mut *lock_live()) {
        let _ = std::fs::remove_file(path);
    }
}

/// How old an unlocked temp file must be before a sweep deletes it: a file just created has
/// not been locked yet by its owner.
const SWEEP_MIN_AGE: Duration = Duration::from_secs(10);

/// Deletes the temp files in `dir` whose names start with `prefix` and that no live process
/// owns (no process holds their lock), so that a `kill -9` leaves nothing behind for long.
/// Returns the files and bytes freed.
pub fn sweep_temp_files(dir: &Path, prefix: &str) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    let (mut files, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(prefix));
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let old = metadata
            .modified()
            .ok()
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age >= SWEEP_MIN_AGE);
        if !ours || !old || !metadata.is_file() {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::options().write(true).open(&path) else {
            continue;
        };
        // Held by its owner: a live download.
        if file.try_lock().is_err() {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            files += 1;
            bytes += metadata.len();
        }
    }
    (files, bytes)
}

/// Writes `tag` as `CACHEDIR.TAG` into `root` if `root` is new or empty, creating it; a
/// folder that already holds exactly this tag is ours as it is. Returns `false`, writing
/// nothing, for a folder with other content: warpgate never adopts (and later deletes from)
/// a folder it did not make.
pub fn claim_folder(root: &Path, tag: &str) -> io::Result<bool> {
    if is_claimed(root, tag) {
        return Ok(true);
    }
    std::fs::create_dir_all(root)?;
    // Another process may be claiming the same new folder: its temp file for the tag is no
    // sign of someone else's content (and its finished tag is checked again below).
    let empty = std::fs::read_dir(root)?.flatten().all(|entry| {
        entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(".warpgate-"))
    });
    if !empty && !is_claimed(root, tag) {
        return Ok(false);
    }
    if !is_claimed(root, tag) {
        write_atomically(&root.join(CACHEDIR_TAG), tag.as_bytes())?;
    }
    Ok(true)
}

/// Whether `root` holds exactly the `CACHEDIR.TAG` text `tag`.
pub fn is_claimed(root: &Path, tag: &str) -> bool {
    read_file(&root.join(CACHEDIR_TAG), 4096, Links::Refuse)
        .is_ok_and(|text| text == tag.as_bytes())
}

/// The name of the cache directory tag file (see <https://bford.info/cachedir/>).
pub const CACHEDIR_TAG: &str = "CACHEDIR.TAG";

/// An exclusive cross-process lock, held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Takes an exclusive lock on the file at `path` (created if missing), waiting for other
/// holders.
///
/// The lock is on the file that is at `path` when the call returns: a holder may delete the
/// file (as `warpgate cache clean` does), so after waiting the path is checked to still name
/// the locked file, and the lock is taken again on the new file if not.
pub fn lock_file(path: &Path) -> io::Result<FileLock> {
    loop {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        file.lock()?;
        if same_file(&file, path)? {
            return Ok(FileLock { _file: file });
        }
    }
}

/// Takes the lock of the file at `path` only if no one holds it, and deletes the file while
/// holding it. Returns whether it was deleted.
pub fn remove_unheld_lock_file(path: &Path) -> io::Result<bool> {
    let file = match File::options().write(true).open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    if file.try_lock().is_err() || !same_file(&file, path)? {
        return Ok(false);
    }
    std::fs::remove_file(path)?;
    Ok(true)
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        match std::fs::metadata(path) {
            Ok(current) => Ok(open.dev() == current.dev() && open.ino() == current.ino()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(path.exists())
    }
}

/// Takes the lock of the project whose config lives in folder `dir`, so that two `warpgate`
/// processes never edit one project's config and lockfile at the same time.
///
/// The lock belongs to the folder itself, not to a path or to a cache: every spelling of the
/// folder (through links, relative or absolute) and every `WARPGATE_HOME` gets the same lock,
/// and nothing is written into the project. On Unix this is `flock` on the folder; elsewhere a
/// `.warpgate-lock` file in it.
pub fn lock_project_folder(dir: &Path) -> io::Result<FileLock> {
    #[cfg(unix)]
    {
        let folder = File::open(dir)?;
        folder.lock()?;
        Ok(FileLock { _file: folder })
    }
    #[cfg(not(unix))]
    {
        lock_file(&dir.join(".warpgate-lock"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_contents_and_write_if_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fs_err::write(&a, b"bytes").unwrap();
        assert!(!same_contents(&a, Links::Refuse, &b).unwrap(), "missing");
        assert!(write_if_changed(&b, b"bytes", Links::Refuse).unwrap());
        assert!(same_contents(&a, Links::Refuse, &b).unwrap());
        assert!(!write_if_changed(&b, b"bytes", Links::Refuse).unwrap());
        assert!(write_if_changed(&b, b"BYTES", Links::Refuse).unwrap());
        assert!(
            !same_contents(&a, Links::Refuse, &b).unwrap(),
            "same size, other bytes"
        );
        assert!(write_if_changed(&b, b"more bytes", Links::Refuse).unwrap());
        assert!(!same_contents(&a, Links::Refuse, &b).unwrap(), "other size");
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            fs_err::os::unix::fs::symlink(&a, &link).unwrap();
            assert!(!same_contents(&a, Links::Refuse, &link).unwrap(), "a link");
        }
    }

    #[test]
    fn bounded_reads_stop_past_the_limit() {
        let mut exact = Bounded::new(&b"12345"[..], 5);
        let mut out = Vec::new();
        assert_eq!(exact.read_to_end(&mut out).unwrap(), 5);
        let mut over = Bounded::new(&b"123456"[..], 5);
        let error = over.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(error.to_string(), "larger than 5 bytes");
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.wasm");
        fs_err::write(&file, b"bytes").unwrap();
        let link = dir.path().join("link.wasm");
        fs_err::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_file(&link, 100, Links::Follow).unwrap(), b"bytes");
        let refused = read_file(&link, 100, Links::Refuse).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "not a regular file: it is a symbolic link"
        );
        let folder = read_file(dir.path(), 100, Links::Follow).unwrap_err();
        assert_eq!(folder.to_string(), "not a regular file: it is a folder");
        let device = read_file(Path::new("/dev/zero"), 100, Links::Follow).unwrap_err();
        assert_eq!(device.to_string(), "not a regular file: it is a device");
    }

    #[test]
    fn claims_only_new_or_empty_folders() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new");
        assert!(claim_folder(&new, "tag\n").unwrap());
        assert!(is_claimed(&new, "tag\n"));
        assert!(claim_folder(&new, "tag\n").unwrap());
        let other = dir.path().join("documents");
        fs_err::create_dir(&other).unwrap();
        fs_err::write(other.join("letter.txt"), b"dear").unwrap();
        assert!(!claim_folder(&other, "tag\n").unwrap());
        assert!(!other.join(CACHEDIR_TAG).exists());
        // Another program's tag is not ours either.
        let cargo = dir.path().join("target");
        fs_err::create_dir(&cargo).unwrap();
        fs_err::write(
            cargo.join(CACHEDIR_TAG),
            b"Signature: 8a477f597d28d172789f06886806bc55\n# cargo\n",
        )
        .unwrap();
        assert!(!claim_folder(&cargo, "tag\n").unwrap());
    }

    #[test]
    fn temp_files_are_tracked_until_persisted_or_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let temp = TempFile::new_in(dir.path(), "download-", "").unwrap();
        let path = temp.path().to_path_buf();
        assert!(lock_live().contains(&path));
        drop(temp);
        assert!(!lock_live().contains(&path) && !path.exists());
        let mut temp = TempFile::new_in(dir.path(), "download-", "").unwrap();
        temp.write_all(b"x").unwrap();
        let path = temp.path().to_path_buf();
        temp.persist(&dir.path().join("done")).unwrap();
        assert!(!lock_live().contains(&path));
        assert_eq!(fs_err::read(dir.path().join("done")).unwrap(), b"x");
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_keep_permissions_and_links_inside_their_folder() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        fs_err::write(&real, "old").unwrap();
        fs_err::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.toml");
        fs_err::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert!(
            fs_err::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs_err::read_to_string(&real).unwrap(), "new");
        let mode = fs_err::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let fresh = dir.path().join("fresh.lock");
        write_atomically(&fresh, b"x").unwrap();
        let mode = fs_err::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        // A link out of its folder is not written through.
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs_err::write(&victim, "keep").unwrap();
        let planted = dir.path().join("warpgate.lock");
        fs_err::os::unix::fs::symlink(&victim, &planted).unwrap();
        let error = write_atomically(&planted, b"new").unwrap_err();
        assert!(
            error.to_string().contains("refusing to write through it"),
            "{error}"
        );
        assert_eq!(fs_err::read_to_string(&victim).unwrap(), "keep");
        let names: Vec<_> = fs_err::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}");
    }

    #[test]
    fn a_deleted_lock_file_is_locked_anew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let held = lock_file(&path).unwrap();
        assert!(!remove_unheld_lock_file(&path).unwrap());
        drop(held);
        assert!(remove_unheld_lock_file(&path).unwrap());
        assert!(!path.exists());
        let _again = lock_file(&path).unwrap();
        assert!(path.exists());
    }
}
