//! Fetching component bytes for a reference: `file://` paths (only when the host allows file
//! loads) and OCI references.

use std::path::Path;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Longest a `file://` read may take (a file on a hung network mount must not hold the
/// component's scale lock for ever).
const FILE_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why bytes for a reference could not be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("file references are disabled on this host (start it with --allow-file-load): {0}")]
    FileLoadDisabled(String),
    #[error("cannot read {path}: {detail}")]
    File { path: String, detail: String },
    #[error("component at {reference} is {size} bytes, over the {limit}-byte limit (max component size)")]
    TooLarge {
        reference: String,
        size: u64,
        limit: usize,
    },
    #[error("unsupported component reference {0:?}: use file:///path/to/component.wasm or an OCI reference like registry.example:5000/app/component:1.0")]
    Unsupported(String),
    #[error(transparent)]
    Pull(#[from] crate::oci::PullError),
}

/// Fetches the component at `reference`, refusing anything over `max_bytes`.
pub(crate) async fn fetch(
    reference: &str,
    allow_file_load: bool,
    max_bytes: usize,
    oci: &crate::oci::OciClient,
) -> Result<Vec<u8>, FetchError> {
    if let Some(path) = reference.strip_prefix("file://") {
        if !allow_file_load {
            return Err(FetchError::FileLoadDisabled(reference.into()));
        }
        return read_file(Path::new(path), reference, max_bytes).await;
    }
    if reference.contains("://") || reference.trim().is_empty() {
        return Err(FetchError::Unsupported(reference.into()));
    }
    Ok(oci.pull(reference, max_bytes).await?)
}

async fn read_file(path: &Path, reference: &str, max_bytes: usize) -> Result<Vec<u8>, FetchError> {
    let file_err = |e: std::io::Error| FetchError::File {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let meta = tokio::fs::metadata(path).await.map_err(file_err)?;
    if !meta.is_file() {
        return Err(FetchError::File {
            path: path.display().to_string(),
            detail: "not a regular file".into(),
        });
    }
    // Refuse before reading: a huge file must not be pulled into memory.
    if meta.len() > max_bytes as u64 {
        return Err(FetchError::TooLarge {
            reference: reference.into(),
            size: meta.len(),
            limit: max_bytes,
        });
    }
    // Read at most one byte past the limit: the file may have grown since it was measured.
    let read = async {
        let file = tokio::fs::File::open(path).await?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.take(max_bytes as u64 + 1)
            .read_to_end(&mut bytes)
            .await?;
        Ok::<_, std::io::Error>(bytes)
    };
    let bytes = tokio::time::timeout(FILE_READ_TIMEOUT, read)
        .await
        .map_err(|_| FetchError::File {
            path: path.display().to_string(),
            detail: format!("not read within {FILE_READ_TIMEOUT:?}"),
        })?
        .map_err(file_err)?;
    if bytes.len() > max_bytes {
        return Err(FetchError::TooLarge {
            reference: reference.into(),
            size: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    Ok(bytes)
}
