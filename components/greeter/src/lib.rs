//! Greets with the `greeting` config value, logging through wasi:logging.

wit_bindgen::generate!({ path: "../wit", world: "greeter-component", generate_all });

use exports::lattice::examples::greeter::Guest;
use wasi::config::store;
use wasi::logging::logging::{log, Level};

struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        let greeting = match store::get("greeting") {
            Ok(Some(g)) => g,
            Ok(None) => "Hello".to_string(),
            Err(e) => {
                log(Level::Error, "greeter", &format!("config unavailable: {e:?}"));
                "Hello".to_string()
            }
        };
        log(Level::Info, "greeter", &format!("greeting {name}"));
        format!("{greeting}, {name}!")
    }

    fn hello() -> String {
        Self::greet("world".to_string())
    }

    fn config() -> Vec<(String, String)> {
        let mut all = store::get_all().unwrap_or_default();
        all.sort();
        all
    }
}

export!(Greeter);
