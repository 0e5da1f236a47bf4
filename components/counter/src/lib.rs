//! Counts visits in wasi:keyvalue: the state lives in the lattice, not in the instance.

wit_bindgen::generate!({ path: "../wit", world: "counter-component", generate_all });

use exports::lattice::examples::counter::Guest;
use wasi::keyvalue::{atomics, store};

struct Counter;

fn open(bucket: &str) -> Result<store::Bucket, String> {
    store::open(bucket).map_err(|e| format!("cannot open bucket {bucket:?}: {e:?}"))
}

impl Guest for Counter {
    fn increment(bucket: String, key: String) -> Result<u64, String> {
        let b = open(&bucket)?;
        atomics::increment(&b, &key, 1).map_err(|e| format!("increment {key:?}: {e:?}"))
    }

    fn get(bucket: String, key: String) -> Result<Option<u64>, String> {
        let b = open(&bucket)?;
        match b.get(&key).map_err(|e| format!("get {key:?}: {e:?}"))? {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| format!("{key:?} does not hold a number")),
        }
    }
}

export!(Counter);
