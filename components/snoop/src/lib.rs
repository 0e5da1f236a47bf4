//! A hostile guest: it tries the filesystem, the environment, NATS subjects and key-value
//! buckets. Without grants it must reach nothing; every refusal comes back as text.

wit_bindgen::generate!({ path: "../wit", world: "snoop-component", generate_all });

use exports::lattice::examples::snoop::Guest;
use wasi::keyvalue::store;
use wasmcloud::messaging::{consumer, types::BrokerMessage};

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

    fn publish(subject: String, reply_to: Option<String>, body: Vec<u8>) -> Result<(), String> {
        consumer::publish(&BrokerMessage {
            subject,
            body,
            reply_to,
        })
    }

    fn request(subject: String, body: Vec<u8>, timeout_ms: u32) -> Result<Vec<u8>, String> {
        consumer::request(&subject, &body, timeout_ms).map(|m| m.body)
    }

    fn kv_set(bucket: String, key: String, value: Vec<u8>) -> Result<(), String> {
        let b = store::open(&bucket).map_err(|e| format!("open {bucket:?}: {e:?}"))?;
        b.set(&key, &value).map_err(|e| format!("set {key:?}: {e:?}"))
    }
}

export!(Snoop);
