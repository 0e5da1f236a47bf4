//! A guest that tries the filesystem and environment: without grants it must see nothing.

wit_bindgen::generate!({ path: "../wit", world: "snoop-component" });

use exports::lattice::examples::snoop::Guest;

struct Snoop;

impl Guest for Snoop {
    fn read_file(path: String) -> Result<String, String> {
        std::fs::read_to_string(&path).map_err(|e| e.to_string())
    }

    fn env_var(name: String) -> Option<String> {
        std::env::var(name).ok()
    }

    fn list_dir(path: String) -> Result<Vec<String>, String> {
        let entries = std::fs::read_dir(&path).map_err(|e| e.to_string())?;
        Ok(entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}

export!(Snoop);
