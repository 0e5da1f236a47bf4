//! Where a provider's executable comes from: `file://PATH` to a native executable (with
//! `--allow-file-load`, as for components).
//!
//! Not yet: provider archives (`.par.gz`) and OCI provider artifacts; both are refused with
//! a reason that says so.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// The executable `reference` names, checked to be a runnable file.
pub(super) fn resolve(reference: &str, allow_file_load: bool) -> Result<PathBuf, String> {
    let Some(path) = reference.strip_prefix("file://") else {
        return Err(format!(
            "cannot start provider {reference}: only file:// references to a native executable are supported (OCI provider artifacts are not yet)"
        ));
    };
    if !allow_file_load {
        return Err(format!(
            "cannot start provider {reference}: file:// references need --allow-file-load"
        ));
    }
    let path = PathBuf::from(path);
    if path.to_string_lossy().ends_with(".par.gz") || path.to_string_lossy().ends_with(".par") {
        return Err(format!(
            "cannot start provider {reference}: provider archives are not supported yet; give the provider's executable"
        ));
    }
    let meta =
        std::fs::metadata(&path).map_err(|e| format!("cannot start provider {reference}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot start provider {reference}: not a file"));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "cannot start provider {reference}: the file is not executable"
        ));
    }
    Ok(path)
}
