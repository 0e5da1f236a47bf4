//! Where a provider's executable comes from: an OCI provider artifact (as `wash push` makes
//! it, pulled with the host's registry settings and credentials), or `file://PATH` (with
//! `--allow-file-load`, as for components) to a native executable or a provider archive
//! (`.par.gz` or `.par`, as `wash par create` makes it: a tar, gzipped or not, holding
//! `claims.jwt` and one `{arch}-{os}.bin` per target). An archive's binary for this machine
//! is unpacked into a content-addressed cache under the system's temp directory.
//!
//! The archive's claims are not verified (Lattice does not read wascap claims); the binary
//! runs as the operator who asked for it.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::Digest;

/// Largest provider binary unpacked from an archive (a bound on what a bad archive costs).
const MAX_BINARY_BYTES: u64 = 512 << 20;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The archive target of this machine, as provider archives name it (`x86_64-linux`).
pub(super) fn this_target() -> String {
    format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS)
}

/// The executable `reference` names: pulled and unpacked, or checked to be a runnable file.
pub(super) async fn fetch(
    oci: &crate::oci::OciClient,
    reference: &str,
    allow_file_load: bool,
) -> Result<PathBuf, String> {
    let refuse = |why: String| format!("cannot start provider {reference}: {why}");
    if reference.starts_with("file://") {
        // Reading (and unpacking) a file blocks: off the runtime's workers.
        let (reference, allow) = (reference.to_string(), allow_file_load);
        return tokio::task::spawn_blocking(move || resolve(&reference, allow))
            .await
            .map_err(|e| refuse(e.to_string()))?;
    }
    let par = oci
        .pull_provider(reference, MAX_BINARY_BYTES as usize)
        .await
        .map_err(|e| refuse(e.to_string()))?;
    tokio::task::spawn_blocking(move || unpack(&par))
        .await
        .map_err(|e| refuse(e.to_string()))?
        .map_err(refuse)
}

/// The executable `file://` `reference` names, checked to be a runnable file.
fn resolve(reference: &str, allow_file_load: bool) -> Result<PathBuf, String> {
    let refuse = |why: String| format!("cannot start provider {reference}: {why}");
    let Some(path) = reference.strip_prefix("file://") else {
        return Err(refuse("not a file:// reference".into()));
    };
    if !allow_file_load {
        return Err(refuse("file:// references need --allow-file-load".into()));
    }
    let path = PathBuf::from(path);
    let meta = std::fs::metadata(&path).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() {
        return Err(refuse("not a file".into()));
    }
    if is_archive(&path).map_err(|e| refuse(e.to_string()))? {
        let bytes = std::fs::read(&path).map_err(|e| refuse(e.to_string()))?;
        return unpack(&bytes).map_err(refuse);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(refuse("the file is not executable".into()));
    }
    Ok(path)
}

/// A provider archive: named so, or a gzip or tar file.
fn is_archive(path: &Path) -> std::io::Result<bool> {
    let name = path.to_string_lossy();
    if name.ends_with(".par.gz") || name.ends_with(".par") {
        return Ok(true);
    }
    let mut head = [0u8; 262];
    let n = std::fs::File::open(path)?.read(&mut head)?;
    Ok(head[..n.min(2)] == GZIP_MAGIC || (n >= 262 && &head[257..262] == b"ustar"))
}

/// Unpacks this machine's binary from archive `bytes` (once per archive content).
fn unpack(bytes: &[u8]) -> Result<PathBuf, String> {
    let digest = hex::encode(sha2::Sha256::digest(bytes));
    let target = this_target();
    let dir = std::env::temp_dir().join("lattice-providers");
    let out = dir.join(format!("{}-{target}", &digest[..32]));
    if out.is_file() {
        return Ok(out);
    }
    let reader: Box<dyn Read> = if bytes.starts_with(&GZIP_MAGIC) {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    };
    let mut archive = tar::Archive::new(reader);
    let wanted = format!("{target}.bin");
    let mut found = Vec::new();
    for entry in archive
        .entries()
        .map_err(|e| format!("not a provider archive: {e}"))?
    {
        let entry = entry.map_err(|e| format!("not a provider archive: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("bad entry in the archive: {e}"))?
            .to_string_lossy()
            .into_owned();
        if name != wanted {
            found.push(name);
            continue;
        }
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let partial = dir.join(format!(".{}-{}", &digest[..32], std::process::id()));
        let mut file = std::fs::File::create(&partial).map_err(|e| e.to_string())?;
        let copied = std::io::copy(&mut entry.take(MAX_BINARY_BYTES + 1), &mut file)
            .map_err(|e| format!("cannot unpack {wanted}: {e}"))?;
        if copied > MAX_BINARY_BYTES {
            let _ = std::fs::remove_file(&partial);
            return Err(format!("{wanted} is larger than {MAX_BINARY_BYTES} bytes"));
        }
        std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        std::fs::rename(&partial, &out).map_err(|e| e.to_string())?;
        return Ok(out);
    }
    Err(format!(
        "the archive has no binary for {target} (it holds {})",
        if found.is_empty() {
            "nothing".to_string()
        } else {
            found.join(", ")
        }
    ))
}
